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
//!       ─► render::gateway_switch::run_message: the sentence; the document
//! ```
//!
//! `--gateway` (the Gateway API mode, `gateway_move`) shares all of this
//! from the plan on: [`carry_out`] is the one flow, the [`Switch`] trait
//! what each mode supplies (its plan's text, engine and sentences).
//!
//! Exit codes: 0 switched and verified (or nothing to do, or a dry run);
//! 2 no `--service` and not exactly one candidate Service (the message lists
//! them), or a Service that does not exist; 5 a precheck failed, or no
//! confirmation; 4 the endpoints did not converge and the switch was undone
//! (or the undo itself failed: the message says what state the Service is
//! in); 1 the Service changed while planning (409: run again); 130 Ctrl-C
//! while verifying (the Service is left as it is and the message says how
//! to roll back).

use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;

use crate::api::{ApiClient, WriteMode};
use crate::cli::{DryRun, GatewaySwitchArgs, GlobalArgs, WriteArgs};
use crate::collect::{CollectOptions, Collected, collect};
use crate::confirm::{self, Decision};
use crate::error::{Error, ExitCode, is_conflict};
use crate::mesh::control_plane::ControlPlane;
use crate::mesh::gateway_switch::{
    CutoverPlan, EndpointView, ServiceState, SwitchAction, SwitchDocument, SwitchOptions,
    SwitchOutcome, SwitchPlan, SwitchRequest, SwitchResult, discover_service, plan,
    validate_label_value,
};
use crate::mesh::gateways::{gateways, selector_text};
use crate::mesh::workloads::classify;
use crate::output::Output;
use crate::render::Layout;
use crate::render::gateway_switch::{plan_text, run_message};
use crate::run::apply::send;
use crate::run::switch::{SwitchRun, run_switch};
use crate::run::{Interrupts, Reporter, Silent, StepReporter};
use crate::snapshot::{DEFAULT_CONTROL_PLANE_NAMESPACE, Scope};

/// How long a Service switch waits for its endpoints by default.
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(120);

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
    let (api, namespace, collected) =
        read_namespace(global, output, "gateway-switch", "Service", "--service").await?;
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
    let timeout = args.timeout.unwrap_or(SERVICE_TIMEOUT);
    carry_out(&api, &plan, global, &args.write, timeout, output).await
}

/// Check the namespace flags, connect, and read the one namespace a switch
/// works in (with the control plane's), for the Service mode and the
/// Gateway mode alike: `verb` is the mode's command, `kind` and `flag` name
/// what it acts on.
pub(super) async fn read_namespace(
    global: &GlobalArgs,
    output: &Output,
    verb: &str,
    kind: &str,
    flag: &str,
) -> anyhow::Result<(ApiClient, String, Collected)> {
    if global.all_namespaces || global.namespaces.len() > 1 {
        return Err(Error::Usage(format!(
            "{verb} works on one {kind} in one namespace: pass -n NAMESPACE (not -A or a list)"
        ))
        .into());
    }
    if global.selector.is_some() {
        output.warn(&format!(
            "-l is ignored by gateway-switch: it acts on one {kind}, named by {flag}"
        ));
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
    Ok((api, namespace, collected))
}

/// A switch as the command carries it out: a Service's selector
/// ([`SwitchPlan`]) or a Gateway's label (`MovePlan`, in `gateway_move`).
/// What differs is here; the flow from the plan to the exit code is one,
/// [`carry_out`].
pub(super) trait Switch: CutoverPlan {
    /// What a wait sees: the Service's endpoints, or how far a move got.
    type View: Clone;
    /// The `-o json|yaml` document.
    type Document: Serialize;

    fn plan_text(&self, timeout: Duration, rehearsal: bool, layout: &Layout) -> String;
    /// The sentence when the target is in place already.
    fn nothing_to_do(&self) -> String;
    /// The engine: the patch, the wait, and the way back.
    async fn run(
        &self,
        api: &ApiClient,
        action: &SwitchAction,
        timeout: Duration,
        interrupts: &Interrupts,
        reporter: &dyn Reporter,
    ) -> SwitchRun<Self::View>;
    /// The sentence a run ends with.
    fn run_message(&self, run: &SwitchRun<Self::View>, timeout: Duration) -> String;
    /// The error of a patch that was not applied, with what to do about it.
    fn not_applied(&self, error: anyhow::Error) -> anyhow::Error;
    fn document(
        &self,
        result: SwitchResult,
        views: Views<Self::View>,
        message: &str,
    ) -> Self::Document;
}

/// What was last seen after the switch, and after the switch-back.
pub(super) type Views<V> = (Option<V>, Option<V>);

/// Show the plan, refuse or ask, write, wait, and end with the sentence,
/// the document (`-o json|yaml`) and the exit code.
pub(super) async fn carry_out<P: Switch>(
    api: &ApiClient,
    plan: &P,
    global: &GlobalArgs,
    write: &WriteArgs,
    timeout: Duration,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let machine = global.output.is_machine_readable();
    let rehearsal = write.dry_run != DryRun::None;
    let text = plan.plan_text(timeout, rehearsal, &output.text_layout());
    if machine {
        output.note(text.trim_end());
    } else {
        output.print_text(&text)?;
    }
    let finish = |result: SwitchResult, views: Views<P::View>, message: &str| {
        super::log_request_summary(api);
        if machine {
            output.print_document(&plan.document(result, views, message))
        } else {
            Ok(())
        }
    };

    if let Some(refusal) = plan.refusal() {
        finish(SwitchResult::Refused, (None, None), &refusal)?;
        return Err(Error::Refused(refusal).into());
    }
    let decision =
        match confirm::decide_interactively(write, plan.changes(), &plan.question(), output) {
            Ok(decision) => decision,
            Err(err) => {
                finish(SwitchResult::Refused, (None, None), &format!("{err:#}"))?;
                return Err(err);
            }
        };
    let Some(action) = plan.action().filter(|_| decision != Decision::NothingToDo) else {
        let message = plan.nothing_to_do();
        // The plan's last line already says so at a terminal.
        if machine {
            output.note(&message);
        }
        finish(SwitchResult::NothingToDo, (None, None), &message)?;
        return Ok(ExitCode::Success);
    };
    match decision {
        Decision::NothingToDo | Decision::Apply => {}
        Decision::PlanOnly => {
            let message = "Dry run: nothing was changed.";
            result_line(output, machine, message)?;
            finish(SwitchResult::DryRun, (None, None), message)?;
            return Ok(ExitCode::Success);
        }
        Decision::RehearseOnServer => {
            let rehearsal = api.clone().with_write_mode(WriteMode::ServerDryRun);
            send(&rehearsal, &action.write)
                .await
                .map_err(|err| plan.not_applied(err))?;
            let message = "Server dry run: the API server accepted the patch; nothing was changed and nothing was verified.";
            result_line(output, machine, message)?;
            finish(SwitchResult::ServerDryRun, (None, None), message)?;
            return Ok(ExitCode::Success);
        }
    }

    // Installed before the write, so a Ctrl-C from here on is an outcome
    // with the way back, never the process's default death.
    let interrupts = Interrupts::from_ctrl_c();
    let run = plan
        .run(api, action, timeout, &interrupts, &Notes(output))
        .await;
    if let SwitchRun::NotApplied(err) = run {
        return Err(plan.not_applied(err));
    }
    let result = run.result();
    let message = plan.run_message(&run, timeout);
    match result {
        SwitchResult::Switched => {
            result_line(output, machine, &message)?;
            finish(result, run.views(), &message)?;
            Ok(ExitCode::Success)
        }
        SwitchResult::Interrupted => {
            finish(result, run.views(), &message)?;
            output.warn(&message);
            Err(Error::Interrupted.into())
        }
        _ => {
            finish(result, run.views(), &message)?;
            Err(Error::RolloutFailed(message).into())
        }
    }
}

impl Switch for SwitchPlan {
    type View = EndpointView;
    type Document = SwitchDocument;

    fn plan_text(&self, timeout: Duration, rehearsal: bool, layout: &Layout) -> String {
        plan_text(self, timeout, rehearsal, layout)
    }

    fn nothing_to_do(&self) -> String {
        format!(
            "Service {} already selects {}: nothing to do.",
            self.service_ref(),
            selector_text(&self.to_selector)
        )
    }

    async fn run(
        &self,
        api: &ApiClient,
        action: &SwitchAction,
        timeout: Duration,
        interrupts: &Interrupts,
        reporter: &dyn Reporter,
    ) -> SwitchRun<EndpointView> {
        run_switch(api, self, action, timeout, interrupts, reporter).await
    }

    fn run_message(&self, run: &SwitchRun<EndpointView>, timeout: Duration) -> String {
        run_message(self, run, timeout)
    }

    /// A 409 on the switch means the Service changed after it was read.
    fn not_applied(&self, error: anyhow::Error) -> anyhow::Error {
        if is_conflict(&error) {
            error.context(format!(
                "Service {} changed after it was read, so nothing was switched: run the command again to plan on its current state",
                self.service_ref()
            ))
        } else {
            error
        }
    }

    fn document(
        &self,
        result: SwitchResult,
        (endpoints, rollback_endpoints): Views<EndpointView>,
        message: &str,
    ) -> SwitchDocument {
        SwitchDocument::new(
            self.clone(),
            SwitchOutcome {
                result,
                endpoints,
                rollback_endpoints,
                message: message.to_string(),
            },
        )
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

/// The last line of a run: stdout for a table, stderr beside a document.
fn result_line(output: &Output, machine: bool, message: &str) -> anyhow::Result<()> {
    if machine {
        output.note(message);
        Ok(())
    } else {
        output.print_text(&format!("\n{message}"))
    }
}
