//! Running a Gateway move: one patch of the Gateway, the wait for istiod's
//! re-render and the rollout, and the way back.
//!
//! ```text
//! (Ctrl-C handler already installed by the caller)
//! pressed already? ─► nothing written
//! PATCH Gateway (label + record, on its resourceVersion)
//!   409 ─► read again: shows the move? landed; label and record as planned? same patch, fresh version
//!   error ─► nothing written
//!   └► await_condition(Gateway + Deployment + pods + EndpointSlices, move_view converged, --timeout, Ctrl-C)
//!        converged ─► Switched (moved)
//!        Ctrl-C    ─► Interrupted (the move stays; the caller prints the way back)
//!        timed out / failed / unverifiable
//!           └► PATCH the undo (409: read again, still moved? undo on the fresh version) ── error ─► UndoFailed
//!                └► await_condition(the same, against the plan's `from`) ─► RolledBack(how that ended)
//! ```
//!
//! One wait, one state: four watched sets (the Gateway by name, its
//! Deployment by name, its pods and its Service's EndpointSlices by label),
//! listed first and then followed; each change gives the condition
//! ([`move_view`], pure) the whole state again.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;
use tokio::time::Instant;

use super::Reporter;
use super::apply::{Applied, Replan, apply};
use super::interrupt::Interrupts;
use super::switch::{SwitchRun, Verification};
use super::wait::{StateSource, Verdict, Waited, await_condition};
use crate::api::{ApiClient, ListScope, ListSelector, WatchedSet};
use crate::duration::human_duration;
use crate::mesh::gateway_api::GATEWAY_NAME_LABEL;
use crate::mesh::gateway_move::{MoveEnd, MovePlan, MoveState, MoveView, gateway_shows, move_view};
use crate::mesh::gateway_switch::{SERVICE_NAME_LABEL, SwitchAction};
use crate::selector::LabelSelector;
use crate::snapshot::gateway_api::{Gateway, GatewayInfo};
use crate::snapshot::{EndpointSliceInfo, PodInfo};

/// Conflicts re-read before giving up on a write.
const CONFLICT_RETRIES: u32 = 5;

/// How a wait for the Gateway ended, with what was last seen. `Failed`:
/// it cannot get there (a failed rollout, the label changed by someone
/// else) or could not be followed.
pub type Progress = Verification<MoveView>;

/// How the move ended: as a Service switch's, `Switched` being moved,
/// re-rendered, rolled out, Programmed and serving.
pub type MoveRun = SwitchRun<MoveView>;

/// Move with `action`, wait for `plan.to`, put it back and wait for
/// `plan.from` when the move does not converge within `timeout`.
pub async fn run_move(
    api: &ApiClient,
    plan: &MovePlan,
    action: &SwitchAction,
    timeout: Duration,
    interrupts: &Interrupts,
    reporter: &dyn Reporter,
) -> MoveRun {
    if interrupts.stop_starting() {
        return MoveRun::InterruptedBeforeWrite;
    }
    let applied = apply(api, action.write.clone(), (), CONFLICT_RETRIES, |fresh| {
        match fresh {
            None => Replan::Fail(format!("Gateway {} no longer exists", plan.gateway_ref())),
            Some(fresh) if gateway_shows(fresh, &action.write) => Replan::Landed(()),
            Some(fresh) if gateway_shows(fresh, &action.undo) => Replan::Send(
                action.write.clone().at_version(version_of(fresh)),
                (),
            ),
            Some(_) => Replan::Fail(format!(
                "Gateway {} changed after it was read (its istio.io/rev or record is not as planned), so nothing was moved: run the command again to plan on its current state",
                plan.gateway_ref()
            )),
        }
    })
    .await;
    match applied {
        Applied::Written { .. } => {}
        Applied::Unneeded { why, .. } => return MoveRun::NotApplied(anyhow::anyhow!(why)),
        Applied::Failed { error, .. } => return MoveRun::NotApplied(error),
    }
    reporter.note(&format!(
        "Patched Gateway {}: {}; waiting up to {} for istiod {} to re-render {}, the rollout, Programmed and the endpoints",
        plan.gateway_ref(),
        MovePlan::label_text(plan.to.label.as_deref()),
        human_duration(timeout),
        plan.to.revision.as_deref().unwrap_or("?"),
        plan.deployment
    ));
    let first = follow(api, plan, &plan.to, timeout, interrupts, reporter).await;
    match first {
        Progress::Converged(view) => return MoveRun::Switched(view),
        Progress::Interrupted(view) => return MoveRun::Interrupted(view),
        Progress::TimedOut(_) | Progress::Failed(..) => {}
    }
    reporter.note(&format!(
        "the move did not converge ({}); putting the Gateway back to {}",
        match &first {
            Progress::Failed(_, why) => why.clone(),
            _ => format!("not within {}", human_duration(timeout)),
        },
        MovePlan::label_text(plan.from.label.as_deref())
    ));
    let undone = apply(
        api,
        action.undo.clone(),
        (),
        CONFLICT_RETRIES,
        |fresh| match fresh {
            None => Replan::Fail(format!("Gateway {} no longer exists", plan.gateway_ref())),
            Some(fresh) if gateway_shows(fresh, &action.undo) => Replan::Landed(()),
            Some(fresh) if gateway_shows(fresh, &action.write) => {
                Replan::Send(action.undo.clone().at_version(version_of(fresh)), ())
            }
            Some(_) => Replan::Fail(format!(
                "Gateway {} was changed by someone else after the move, so it was not put back",
                plan.gateway_ref()
            )),
        },
    )
    .await;
    match undone {
        Applied::Written { .. } => {}
        Applied::Unneeded { why, .. } => {
            return MoveRun::UndoFailed {
                first,
                error: anyhow::anyhow!(why),
            };
        }
        Applied::Failed { error, .. } => {
            return MoveRun::UndoFailed { first, error };
        }
    }
    let back = follow(api, plan, &plan.from, timeout, interrupts, reporter).await;
    MoveRun::RolledBack { first, back }
}

fn version_of(object: &Value) -> &str {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Watch the Gateway, its Deployment, pods and endpoints until they show
/// `target`, `timeout` passes, the move fails, or Ctrl-C.
pub async fn follow(
    api: &ApiClient,
    plan: &MovePlan,
    target: &MoveEnd,
    timeout: Duration,
    interrupts: &Interrupts,
    reporter: &dyn Reporter,
) -> Progress {
    let mut source = match MoveSource::new(api, plan) {
        Ok(source) => source,
        Err(why) => return Progress::Failed(MoveView::default(), why),
    };
    let deadline = Instant::now() + timeout;
    let waited = await_condition(
        &mut source,
        |state: &MoveState| {
            let view = move_view(state, target);
            if view.converged || view.failed.is_some() {
                Verdict::Done(view)
            } else {
                Verdict::Pending(Some(view.describe(target)))
            }
        },
        deadline,
        interrupts.first(),
        |what| reporter.note(&format!("  {what}")),
    )
    .await;
    let last = move_view(&source.state, target);
    match waited {
        Waited::Done(view) => match view.failed.clone() {
            Some(why) => Progress::Failed(view, why),
            None => {
                reporter.note(&format!(
                    "  re-rendered by {}, rolled out, {} on {}, Programmed; endpoints: {}",
                    view.rendered_by.as_deref().unwrap_or("?"),
                    crate::mesh::gateway_move::pods(view.pods_on_target),
                    target.version.as_deref().unwrap_or("the target proxy"),
                    view.endpoints.describe()
                ));
                Progress::Converged(view)
            }
        },
        Waited::TimedOut { .. } => Progress::TimedOut(last),
        Waited::Broken(why) => Progress::Failed(last, why),
        Waited::Stopped { .. } => Progress::Interrupted(last),
    }
}

/// The four watched sets behind one [`MoveState`].
struct MoveSource {
    gateway: WatchedSet<Gateway>,
    deployment: WatchedSet<Deployment>,
    pods: WatchedSet<Pod>,
    slices: WatchedSet<EndpointSlice>,
    state: MoveState,
    listed: bool,
}

impl MoveSource {
    fn new(api: &ApiClient, plan: &MovePlan) -> Result<Self, String> {
        let scope = || ListScope::Namespace(plan.namespace.clone());
        let by_name = |name: &str| ListSelector {
            labels: None,
            fields: Some(format!("metadata.name={name}")),
        };
        let by_label = |key: &str, value: &str| {
            LabelSelector::parse(&format!("{key}={value}"))
                .map(ListSelector::labels)
                .map_err(|e| format!("selecting {key}={value}: {e}"))
        };
        Ok(MoveSource {
            gateway: api.watch_set(scope(), by_name(&plan.gateway)),
            deployment: api.watch_set(scope(), by_name(&plan.deployment)),
            pods: api.watch_set(scope(), by_label(GATEWAY_NAME_LABEL, &plan.gateway)?),
            slices: api.watch_set(scope(), by_label(SERVICE_NAME_LABEL, &plan.service)?),
            state: MoveState::default(),
            listed: false,
        })
    }

    fn set_gateway(&mut self, gateways: Vec<Gateway>) {
        self.state.gateway = gateways.first().map(GatewayInfo::from);
    }
    fn set_deployment(&mut self, deployments: Vec<Deployment>) {
        self.state.deployment = deployments.into_iter().next();
    }
    fn set_pods(&mut self, pods: Vec<Pod>) {
        self.state.pods = pods.iter().map(PodInfo::from).collect();
    }
    fn set_slices(&mut self, slices: Vec<EndpointSlice>) {
        self.state.slices = slices.iter().map(EndpointSliceInfo::from).collect();
    }
}

impl StateSource for MoveSource {
    type State = MoveState;

    async fn next_state(&mut self, deadline: Instant) -> Result<Option<MoveState>, String> {
        let broken = |err: anyhow::Error| format!("{err:#}");
        if !self.listed {
            let (gateway, deployment, pods, slices) = tokio::join!(
                self.gateway.next(deadline),
                self.deployment.next(deadline),
                self.pods.next(deadline),
                self.slices.next(deadline),
            );
            let (Some(gateway), Some(deployment), Some(pods), Some(slices)) = (
                gateway.map_err(broken)?,
                deployment.map_err(broken)?,
                pods.map_err(broken)?,
                slices.map_err(broken)?,
            ) else {
                return Ok(None);
            };
            self.set_gateway(gateway);
            self.set_deployment(deployment);
            self.set_pods(pods);
            self.set_slices(slices);
            self.listed = true;
            return Ok(Some(self.state.clone()));
        }
        // Whichever set changes first; the others keep their streams (a
        // WatchedSet loses nothing when a wait on it is dropped).
        tokio::select! {
            changed = self.gateway.next(deadline) => match changed.map_err(broken)? {
                Some(set) => self.set_gateway(set),
                None => return Ok(None),
            },
            changed = self.deployment.next(deadline) => match changed.map_err(broken)? {
                Some(set) => self.set_deployment(set),
                None => return Ok(None),
            },
            changed = self.pods.next(deadline) => match changed.map_err(broken)? {
                Some(set) => self.set_pods(set),
                None => return Ok(None),
            },
            changed = self.slices.next(deadline) => match changed.map_err(broken)? {
                Some(set) => self.set_slices(set),
                None => return Ok(None),
            },
        }
        Ok(Some(self.state.clone()))
    }
}

#[cfg(test)]
mod tests;
