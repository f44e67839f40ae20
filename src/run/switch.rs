//! Running a gateway switch: one patch, its verification, and the way back.
//!
//! ```text
//! (Ctrl-C handler already installed by the caller)
//! pressed already? ─► nothing written
//! PATCH Service (selector + record, on its resourceVersion) ── error ─► nothing written
//!   └► await_condition(EndpointSlices + pod look-ups, only Ready target pods, --timeout, Ctrl-C)
//!        converged    ─► Switched
//!        Ctrl-C       ─► Interrupted (the switch stays; the caller prints the way back)
//!        timed out / unverifiable
//!           └► PATCH the undo (on the version the switch produced) ── error ─► UndoFailed
//!                └► await_condition(the old pods) ─► RolledBack(how that verification ended)
//! ```
//!
//! Outcomes are enums, generic over what a wait sees so that the Gateway
//! move (`run::gateway_move`) ends the same ways; the caller turns them into
//! the sentence and the exit code. The verification's state source looks up, once each, pods the
//! plan did not know (new replicas, someone else's pods), so the condition
//! itself stays a pure function of what was seen.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;
use tokio::time::Instant;

use super::Reporter;
use super::apply::{Sent, read, send};
use super::interrupt::Interrupts;
use super::wait::{StateSource, Verdict, Waited, await_condition};
use crate::api::{ApiClient, ListScope, ListSelector, WatchedSet};
use crate::duration::human_duration;
use crate::error::is_conflict;
use crate::mesh::gateway_switch::{
    EndpointTarget, EndpointView, SERVICE_NAME_LABEL, SWITCHED_AT_ANNOTATION, SwitchAction,
    SwitchPlan, SwitchResult, endpoint_view,
};
use crate::mesh::gateways::{selector_matches, selector_text};
use crate::selector::LabelSelector;
use crate::snapshot::{EndpointSliceInfo, PodInfo};

/// How a wait for a switch's target ended, with what was last seen: the
/// Service's endpoints ([`EndpointView`]), or a Gateway move's view
/// (`run::gateway_move::Progress`).
#[derive(Clone, Debug, PartialEq)]
pub enum Verification<V> {
    Converged(V),
    TimedOut(V),
    /// It cannot get there or could not be followed (the error sentence):
    /// unverified.
    Failed(V, String),
    Interrupted(V),
}

impl<V> Verification<V> {
    pub fn view(&self) -> &V {
        match self {
            Verification::Converged(v)
            | Verification::TimedOut(v)
            | Verification::Failed(v, _)
            | Verification::Interrupted(v) => v,
        }
    }
}

/// How a switch ended (a Service's, or a Gateway move: `run::gateway_move::MoveRun`).
#[derive(Debug)]
pub enum SwitchRun<V> {
    /// Ctrl-C came before the patch was sent: nothing was written.
    InterruptedBeforeWrite,
    /// The patch failed: nothing was written (the error says why; a 409
    /// means the object changed after it was read).
    NotApplied(anyhow::Error),
    /// The switch is in place and verified.
    Switched(V),
    /// Ctrl-C while verifying: the switch is in place, unverified.
    Interrupted(V),
    /// Verification failed (`first`), and the undo patch failed too: the
    /// object may still carry the switch.
    UndoFailed {
        first: Verification<V>,
        error: anyhow::Error,
    },
    /// Verification failed (`first`), the undo patch was applied and then
    /// verified as `back` says.
    RolledBack {
        first: Verification<V>,
        back: Verification<V>,
    },
}

impl<V: Clone> SwitchRun<V> {
    /// How it ended, in the document's one word.
    pub fn result(&self) -> SwitchResult {
        match self {
            SwitchRun::InterruptedBeforeWrite | SwitchRun::Interrupted(_) => {
                SwitchResult::Interrupted
            }
            SwitchRun::NotApplied(_) => SwitchResult::Refused,
            SwitchRun::Switched(_) => SwitchResult::Switched,
            SwitchRun::UndoFailed { .. } => SwitchResult::RollbackFailed,
            SwitchRun::RolledBack { back, .. } => match back {
                Verification::Converged(_) => SwitchResult::RolledBack,
                Verification::TimedOut(_) | Verification::Failed(..) => {
                    SwitchResult::RollbackFailed
                }
                Verification::Interrupted(_) => SwitchResult::Interrupted,
            },
        }
    }

    /// What was last seen after the switch, and after the switch-back.
    pub fn views(&self) -> (Option<V>, Option<V>) {
        match self {
            SwitchRun::InterruptedBeforeWrite | SwitchRun::NotApplied(_) => (None, None),
            SwitchRun::Switched(view) | SwitchRun::Interrupted(view) => (Some(view.clone()), None),
            SwitchRun::UndoFailed { first, .. } => (Some(first.view().clone()), None),
            SwitchRun::RolledBack { first, back } => {
                (Some(first.view().clone()), Some(back.view().clone()))
            }
        }
    }
}

/// Switch with `action`, verify against the plan's `verify`, undo and
/// verify against `verify_rollback` when the switch does not take.
pub async fn run_switch(
    api: &ApiClient,
    plan: &SwitchPlan,
    action: &SwitchAction,
    timeout: Duration,
    interrupts: &Interrupts,
    reporter: &dyn Reporter,
) -> SwitchRun<EndpointView> {
    let (namespace, service) = (plan.namespace.as_str(), plan.service.as_str());
    if interrupts.stop_starting() {
        return SwitchRun::InterruptedBeforeWrite;
    }
    let switched = match send(api, &action.write).await {
        Ok(Sent::Patched(object)) => object,
        Ok(other) => {
            return SwitchRun::NotApplied(anyhow::anyhow!(
                "unexpected answer to the Service patch: {other:?}"
            ));
        }
        // A 409 may answer our own retry: the server stored the first try,
        // then failed (a 5xx after the store), and the retry carried the old
        // resourceVersion. The Service as it is now tells which.
        Err(error) if is_conflict(&error) => match read(api, &action.write.target).await {
            Ok(Some(fresh)) if shows_the_switch(&fresh, action) => {
                reporter.note(&format!(
                    "Service {} already carries this switch (a retried write): verifying it",
                    plan.service_ref()
                ));
                fresh
            }
            _ => return SwitchRun::NotApplied(error),
        },
        Err(error) => return SwitchRun::NotApplied(error),
    };
    reporter.note(&format!(
        "Patched Service {}: selector now {}; waiting up to {} for its EndpointSlices to list only Ready pods matching it",
        plan.service_ref(),
        selector_text(&plan.to_selector),
        human_duration(timeout)
    ));
    let first = verify_endpoints(
        api,
        namespace,
        service,
        &plan.verify,
        timeout,
        interrupts,
        reporter,
    )
    .await;
    match first {
        Verification::Converged(view) => return SwitchRun::Switched(view),
        Verification::Interrupted(view) => return SwitchRun::Interrupted(view),
        Verification::TimedOut(_) | Verification::Failed(..) => {}
    }
    reporter.note(&format!(
        "the switch did not verify ({}); switching back to {}",
        match &first {
            Verification::Failed(_, why) => why.clone(),
            _ => format!("not converged within {}", human_duration(timeout)),
        },
        selector_text(&plan.from_selector)
    ));
    let version = switched
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let undo = action.undo.clone().at_version(version);
    if let Err(error) = send(api, &undo).await {
        return SwitchRun::UndoFailed { first, error };
    }
    let back = verify_endpoints(
        api,
        namespace,
        service,
        &plan.verify_rollback,
        timeout,
        interrupts,
        reporter,
    )
    .await;
    SwitchRun::RolledBack { first, back }
}

/// Whether `service` already shows `action`'s write: the planned selector
/// and this run's switched-at record.
fn shows_the_switch(service: &Value, action: &SwitchAction) -> bool {
    let planned = action.write.body_to_send();
    let at = |v: &Value| {
        v.pointer(&format!(
            "/metadata/annotations/{}",
            SWITCHED_AT_ANNOTATION.replace('~', "~0").replace('/', "~1")
        ))
        .cloned()
    };
    let selector_matches = planned
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .is_some_and(|changes| {
            changes.iter().all(|(key, value)| {
                service
                    .pointer(&format!("/spec/selector/{key}"))
                    .unwrap_or(&Value::Null)
                    == value
            })
        });
    selector_matches && at(&planned).is_some() && at(&planned) == at(service)
}

/// Watch the Service's EndpointSlices until they list only Ready pods of
/// `target`, `timeout` passes, or Ctrl-C.
pub async fn verify_endpoints(
    api: &ApiClient,
    namespace: &str,
    service: &str,
    target: &EndpointTarget,
    timeout: Duration,
    interrupts: &Interrupts,
    reporter: &dyn Reporter,
) -> Verification<EndpointView> {
    let selector = match LabelSelector::parse(&format!("{SERVICE_NAME_LABEL}={service}")) {
        Ok(selector) => selector,
        Err(reason) => {
            return Verification::Failed(
                EndpointView::default(),
                format!("selecting the Service's EndpointSlices: {reason}"),
            );
        }
    };
    let mut source = EndpointSource {
        slices: api.watch_set::<EndpointSlice>(
            ListScope::Namespace(namespace.to_string()),
            ListSelector::labels(selector),
        ),
        api,
        namespace,
        target,
        looked_up: BTreeMap::new(),
        last: EndpointView::default(),
    };
    let deadline = Instant::now() + timeout;
    let waited = await_condition(
        &mut source,
        |view: &EndpointView| {
            if view.converged() {
                Verdict::Done(())
            } else {
                Verdict::Pending(Some(view.describe()))
            }
        },
        deadline,
        interrupts.first(),
        |what| reporter.note(&format!("  endpoints: {what}")),
    )
    .await;
    let last = source.last;
    match waited {
        Waited::Done(()) => {
            reporter.note(&format!("  endpoints: {}", last.describe()));
            Verification::Converged(last)
        }
        Waited::TimedOut { .. } => Verification::TimedOut(last),
        Waited::Broken(why) => Verification::Failed(last, why),
        Waited::Stopped { .. } => Verification::Interrupted(last),
    }
}

/// The Service's endpoints as a view of the target: each state is the
/// latest set of EndpointSlices, with pods the plan did not know looked up
/// once each.
struct EndpointSource<'a> {
    slices: WatchedSet<EndpointSlice>,
    api: &'a ApiClient,
    namespace: &'a str,
    target: &'a EndpointTarget,
    looked_up: BTreeMap<String, bool>,
    last: EndpointView,
}

impl StateSource for EndpointSource<'_> {
    type State = EndpointView;

    async fn next_state(&mut self, deadline: Instant) -> Result<Option<EndpointView>, String> {
        let Some(current) = self
            .slices
            .next(deadline)
            .await
            .map_err(|err| format!("{err:#}"))?
        else {
            return Ok(None);
        };
        let infos: Vec<EndpointSliceInfo> = current.iter().map(EndpointSliceInfo::from).collect();
        let mut view = endpoint_view(&infos, self.target, &self.looked_up);
        if !view.unknown.is_empty() {
            for name in view.unknown.clone() {
                let matches = self
                    .api
                    .get::<Pod>(Some(self.namespace), &name)
                    .await
                    .map_err(|err| format!("{err:#}"))?
                    .map(|pod| PodInfo::from(&pod))
                    .is_some_and(|pod| {
                        !pod.terminating && selector_matches(&self.target.selector, &pod.labels)
                    });
                self.looked_up.insert(name, matches);
            }
            view = endpoint_view(&infos, self.target, &self.looked_up);
        }
        self.last = view.clone();
        Ok(Some(view))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::{fake_client, status_body};
    use crate::mesh::gateway_switch::tests::blue_to_green_plan;
    use crate::run::Recorded;
    use serde_json::json;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn service(rv: &str) -> String {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "istio-ingressgateway", "namespace": "istio-gateways", "resourceVersion": rv},
               "spec": {"selector": {"istio": "ingressgateway", "version": "1-22-3"}}})
        .to_string()
    }

    #[tokio::test]
    async fn a_switch_that_does_not_verify_and_whose_undo_fails_says_so() {
        let plan = blue_to_green_plan();
        let action = plan.action.clone().expect("a switch");
        let patches = Arc::new(AtomicUsize::new(0));
        let counted = patches.clone();
        let (api, seen) = fake_client(move |method, _, query, _| match method {
            "PATCH" if counted.fetch_add(1, Ordering::SeqCst) == 0 => (200, service("5")),
            "PATCH" => (
                422,
                status_body(422, "Invalid", "selector is immutable today").to_string(),
            ),
            // No endpoint ever: the switch cannot converge.
            "GET" if query.contains("watch") => (200, String::new()),
            "GET" => (
                200,
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList",
                       "metadata": {"resourceVersion": "7"}, "items": []})
                .to_string(),
            ),
            _ => (500, "{}".into()),
        });
        let recorded = Recorded::default();
        let run = run_switch(
            &api,
            &plan,
            &action,
            Duration::from_millis(300),
            &Interrupts::none(),
            &recorded,
        )
        .await;
        let SwitchRun::UndoFailed { first, error } = run else {
            panic!("the undo failed: {run:?}");
        };
        assert!(matches!(first, Verification::TimedOut(_)), "{first:?}");
        assert!(
            format!("{error:#}").contains("selector is immutable today"),
            "{error:#}"
        );
        assert_eq!(patches.load(Ordering::SeqCst), 2, "the switch and its undo");
        assert!(
            recorded
                .lines()
                .iter()
                .any(|l| l.contains("switching back to")),
            "{:?}",
            recorded.lines()
        );
        // The undo is pinned to the version the switch produced.
        let seen = seen.lock().unwrap().clone();
        assert!(seen.iter().any(|r| r.starts_with("PATCH")), "{seen:?}");
    }

    #[tokio::test]
    async fn ctrl_c_before_the_switch_writes_nothing() {
        let plan = blue_to_green_plan();
        let action = plan.action.clone().expect("a switch");
        let (api, seen) = fake_client(|_, _, _, _| (500, "{}".into()));
        let (interrupts, handle) = Interrupts::manual();
        handle.press();
        let run = run_switch(
            &api,
            &plan,
            &action,
            Duration::from_secs(60),
            &interrupts,
            &crate::run::Silent,
        )
        .await;
        assert!(matches!(run, SwitchRun::InterruptedBeforeWrite), "{run:?}");
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn the_undo_is_sent_on_the_version_the_switch_produced() {
        let plan = blue_to_green_plan();
        let action = plan.action.expect("a switch");
        assert_eq!(
            action.write.body_to_send()["metadata"]["resourceVersion"],
            "4711"
        );
        let undo = action.undo.clone().at_version("5");
        assert_eq!(undo.body_to_send()["metadata"]["resourceVersion"], "5");
        assert_eq!(undo.body_to_send()["spec"]["selector"]["version"], "1-21-2");
    }
}
