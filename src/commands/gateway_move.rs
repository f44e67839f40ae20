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
//!       ─► render::gateway_move::run_message: the sentence; the document
//! ```
//!
//! From the plan on, the flow is the Service mode's own (`gateway_switch::carry_out`,
//! through the `Switch` trait): only the plan, its text, the engine and the
//! sentences differ.
//!
//! Exit codes as the Service mode's: 0 moved and verified (or nothing to do,
//! or a dry run); 2 no such Gateway, not an Istio class, or no Gateway API on
//! the cluster; 5 a precheck failed or no confirmation; 4 it did not converge
//! and was put back (or putting it back failed: the message says so); 1 the
//! Gateway changed while planning; 130 Ctrl-C while waiting.

use std::time::Duration;

use chrono::Utc;

use super::gateway_switch::{Switch, Views, carry_out, read_namespace};
use crate::api::ApiClient;
use crate::cli::{GatewaySwitchArgs, GlobalArgs};
use crate::error::{Error, ExitCode};
use crate::mesh::control_plane::ControlPlane;
use crate::mesh::gateway_api::{assess, gateway_kind};
use crate::mesh::gateway_move::{
    MoveDocument, MoveOptions, MoveOutcome, MovePlan, MoveRequest, MoveView, plan_move,
};
use crate::mesh::gateway_switch::{SwitchAction, SwitchResult, validate_label_value};
use crate::output::Output;
use crate::render::Layout;
use crate::render::gateway_move::{plan_text, run_message};
use crate::run::gateway_move::{MoveRun, run_move};
use crate::run::{Interrupts, Reporter};
use crate::snapshot::gateway_api::{Gateway, GatewayInfo};

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
    let (api, namespace, collected) = read_namespace(
        global,
        output,
        "gateway-switch --gateway",
        "Gateway",
        "--gateway",
    )
    .await?;
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

    carry_out(&api, &plan, global, &args.write, config.timeout, output).await
}

impl Switch for MovePlan {
    type View = MoveView;
    type Document = MoveDocument;

    fn plan_text(&self, timeout: Duration, rehearsal: bool, layout: &Layout) -> String {
        plan_text(self, timeout, rehearsal, layout)
    }

    fn nothing_to_do(&self) -> String {
        format!(
            "Gateway {} already has {}: nothing to do.",
            self.gateway_ref(),
            MovePlan::label_text(self.to.label.as_deref())
        )
    }

    async fn run(
        &self,
        api: &ApiClient,
        action: &SwitchAction,
        timeout: Duration,
        interrupts: &Interrupts,
        reporter: &dyn Reporter,
    ) -> MoveRun {
        run_move(api, self, action, timeout, interrupts, reporter).await
    }

    fn run_message(&self, run: &MoveRun, timeout: Duration) -> String {
        run_message(self, run, timeout)
    }

    /// The engine re-reads after a 409 and says why it gave up.
    fn not_applied(&self, error: anyhow::Error) -> anyhow::Error {
        error
    }

    fn document(
        &self,
        result: SwitchResult,
        (progress, rollback_progress): Views<MoveView>,
        message: &str,
    ) -> MoveDocument {
        MoveDocument::new(
            self.clone(),
            MoveOutcome {
                result,
                progress,
                rollback_progress,
                message: message.to_string(),
            },
        )
    }
}
