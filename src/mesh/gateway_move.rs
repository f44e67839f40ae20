//! `gateway-switch --gateway`: move a Gateway API `Gateway` to another
//! revision by setting its `istio.io/rev` label, with the checks before it,
//! the patch that undoes it, and what istiod must have done for the move to
//! count as done.
//!
//! ```text
//! Gateway (read just before) + snapshot ─► plan_move() ─► MovePlan
//!                                            prechecks: pass/fail + reason
//!                                            action: merge patch, undo patch
//!                                            to / from: what the wait must see
//! Gateway, its Deployment, pods, EndpointSlices (watched) ─► move_view() ─► converged?
//! ```
//!
//! istiod renders a Gateway's Deployment from the revision its label names
//! (`pkg/revisions/tag_watcher.go`) and copies the Gateway's labels and
//! annotations into the pod template (`kube-gateway.yaml`), so changing the
//! label re-renders the Deployment and rolls it; nothing here restarts
//! anything. The write is one JSON merge patch on the Gateway (a custom
//! resource takes no strategic merge patch): the label, and two annotations
//! recording the label it replaced ([`PREVIOUS_REVISION_ANNOTATION`], as a
//! JSON object: `{}` when it had none) and when ([`SWITCHED_AT_ANNOTATION`]).
//! It carries the Gateway's `resourceVersion`; after a 409 the Gateway is read
//! again and, when only its status moved on (istiod writes it), the same
//! patch goes out on the fresh version ([`replan_move`]).
//!
//! The move is done when the Gateway carries the label, its Deployment's
//! template was rendered by the target revision with that revision's image,
//! the rollout is complete, every live pod runs that image, the Gateway is
//! `Programmed` for its current generation, and the Service's EndpointSlices
//! list only Ready pods on the new image ([`move_view`]). If not within the
//! timeout, the undo patch restores the label and the record exactly, so the
//! template is the previous one again and the Deployment goes back to its
//! previous ReplicaSet; the same test, against [`MovePlan::from`], verifies
//! that.
//!
//! `--rollback` sets the recorded label back (removing it when none was
//! recorded) and records the one it replaces, so a second `--rollback` goes
//! forward again.
//!
//! Pure: the caller reads the cluster, sends the patch and watches.

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;
use serde_json::{Value, json};

use crate::mesh::API_VERSION;
use crate::mesh::control_plane::{ControlPlane, REV_LABEL};
use crate::mesh::gateway_api::{
    GatewayApiGateway, GatewayApiState, GatewayKind, RevisionSource, programmed_now,
    rendered_image, serving_revision,
};
use crate::mesh::gateway_switch::{
    CutoverPlan, EndpointView, SWITCHED_AT_ANNOTATION, SwitchAction, SwitchMode, SwitchResult,
    Verdict,
};
use crate::mesh::gateways::{CheckKind, TakeoverCheck};
use crate::mesh::proxy::{image_version, same_version};
use crate::mesh::rollout::{RolloutProgress, deployment_progress};
use crate::snapshot::gateway_api::GatewayInfo;
use crate::snapshot::{
    ClusterSnapshot, EndpointSliceInfo, Labels, PodInfo, TEMPLATE_REVISION_ANNOTATION,
};
use crate::write::{ObjectKind, ObjectRef, Patch, Write};

/// The annotation holding the `istio.io/rev` label a move replaced, as a
/// JSON object (`{"istio.io/rev":"1-21-2"}`, or `{}` when it had none).
pub const PREVIOUS_REVISION_ANNOTATION: &str = "mesh-upgrade.io/previous-revision";

/// What the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MoveRequest {
    /// `--to REVISION-OR-TAG`.
    To(String),
    /// `--rollback`: the recorded label.
    Rollback,
}

/// The request and its modifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoveOptions {
    pub request: MoveRequest,
    /// `--force`: soft precheck failures do not refuse.
    pub force: bool,
    /// Whether EndpointSlices could be read (the move is verified on them).
    pub endpoint_slices_readable: bool,
}

/// One end of a move: the Gateway's label and what istiod then renders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MoveEnd {
    /// The Gateway's `istio.io/rev` (`null`: none, so its namespace's or the default).
    pub label: Option<String>,
    /// Where the revision comes from with that label.
    pub revision_from: RevisionSource,
    /// The revision that renders it (`null`: none).
    pub revision: Option<String>,
    /// The `istio-proxy` image that revision renders for it.
    pub image: Option<String>,
    pub version: Option<String>,
}

/// The whole plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MovePlan {
    pub namespace: String,
    pub gateway: String,
    pub class: String,
    pub kind: GatewayKind,
    /// The Deployment and Service istiod renders for it.
    pub deployment: String,
    pub service: String,
    pub mode: SwitchMode,
    /// Where it is now.
    pub from: MoveEnd,
    /// Where it goes.
    pub to: MoveEnd,
    pub prechecks: Vec<TakeoverCheck>,
    pub force: bool,
    pub verdict: Verdict,
    /// The write; `None` when the label is already the target or the move
    /// is refused.
    pub action: Option<SwitchAction>,
}

impl MovePlan {
    /// `edge/public`.
    pub fn gateway_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.gateway)
    }

    /// `istio.io/rev=1-22-3`, or `no istio.io/rev`.
    pub fn label_text(label: Option<&str>) -> String {
        match label {
            Some(value) => format!("{REV_LABEL}={value}"),
            None => format!("no {REV_LABEL}"),
        }
    }
}

impl CutoverPlan for MovePlan {
    fn prechecks(&self) -> &[TakeoverCheck] {
        &self.prechecks
    }

    fn force(&self) -> bool {
        self.force
    }

    fn verdict(&self) -> Verdict {
        self.verdict
    }

    fn action(&self) -> Option<&SwitchAction> {
        self.action.as_ref()
    }

    fn refusing(&self) -> String {
        match self.mode {
            SwitchMode::Switch => format!(
                "refusing to move Gateway {} to {}",
                self.gateway_ref(),
                Self::label_text(self.to.label.as_deref())
            ),
            SwitchMode::Rollback => format!("refusing to roll back Gateway {}", self.gateway_ref()),
        }
    }

    fn question(&self) -> String {
        let verb = match self.mode {
            SwitchMode::Switch => "Move",
            SwitchMode::Rollback => "Roll back",
        };
        format!(
            "{verb} Gateway {} to {} ({})?",
            self.gateway_ref(),
            self.to.revision.as_deref().unwrap_or("?"),
            Self::label_text(self.to.label.as_deref())
        )
    }
}

/// A recorded label: `{}` (none) or `{"istio.io/rev": "x"}`.
pub fn parse_recorded_label(text: &str) -> Result<Option<String>, String> {
    let parsed: Labels = serde_json::from_str(text)
        .map_err(|e| format!("{text:?} is not a JSON object of labels ({e})"))?;
    Ok(parsed.get(REV_LABEL).cloned())
}

fn record(label: Option<&str>) -> String {
    match label {
        Some(value) => json!({REV_LABEL: value}).to_string(),
        None => "{}".to_string(),
    }
}

/// Build the plan for `gateway` (assessed on the Gateway as just read).
pub fn plan_move(
    snapshot: &ClusterSnapshot,
    control_plane: &ControlPlane,
    gateway: &GatewayApiGateway,
    options: &MoveOptions,
    now: DateTime<Utc>,
) -> MovePlan {
    let info = &gateway.info;
    let namespace = snapshot.namespace(&info.namespace);
    let current = info.labels.get(REV_LABEL).cloned();
    let end = |label: Option<String>| -> MoveEnd {
        let mut labels = info.labels.clone();
        match &label {
            Some(value) => labels.insert(REV_LABEL.to_string(), value.clone()),
            None => labels.remove(REV_LABEL),
        };
        let choice = serving_revision(&labels, namespace, control_plane);
        let revision = choice
            .revision
            .as_deref()
            .and_then(|r| control_plane.revision(r));
        let image = revision.and_then(|r| rendered_image(info, r));
        MoveEnd {
            label,
            revision_from: choice.source,
            revision: choice.revision.clone(),
            version: image
                .as_deref()
                .and_then(image_version)
                .or_else(|| revision.and_then(|r| r.proxy_version.clone())),
            image,
        }
    };
    let from = end(current.clone());
    let mut checks = Vec::new();
    if gateway.state == GatewayApiState::Unmanaged {
        checks.push(TakeoverCheck::hard_fail(
            CheckKind::GatewayManaged,
            "it names its own address (spec.addresses): istiod renders nothing for it",
        ));
    } else {
        checks.push(TakeoverCheck::pass(
            CheckKind::GatewayManaged,
            format!(
                "istiod renders Deployment and Service {} for it",
                gateway.rendered_name
            ),
        ));
    }
    let (mode, to) = match &options.request {
        MoveRequest::To(value) => {
            checks.push(TakeoverCheck::pass(
                CheckKind::PreviousRevision,
                format!(
                    "{} is recorded in {PREVIOUS_REVISION_ANNOTATION} for --rollback{}",
                    MovePlan::label_text(current.as_deref()),
                    match from.revision_from {
                        RevisionSource::Gateway => String::new(),
                        RevisionSource::Namespace => format!(
                            " (it follows its namespace's {REV_LABEL}={})",
                            namespace
                                .and_then(|n| n.labels.get(REV_LABEL))
                                .map_or("?", String::as_str)
                        ),
                        RevisionSource::Default => " (it follows the default)".to_string(),
                    }
                ),
            ));
            (SwitchMode::Switch, end(Some(value.clone())))
        }
        MoveRequest::Rollback => {
            match info
                .annotations
                .get(PREVIOUS_REVISION_ANNOTATION)
                .map(|t| parse_recorded_label(t))
            {
                Some(Ok(recorded)) => {
                    let when = info
                        .annotations
                        .get(SWITCHED_AT_ANNOTATION)
                        .map(|t| format!(" (moved away at {t})"))
                        .unwrap_or_default();
                    checks.push(TakeoverCheck::pass(
                        CheckKind::PreviousRevision,
                        format!(
                            "restores the recorded {}{when}; {} is recorded in its place",
                            MovePlan::label_text(recorded.as_deref()),
                            MovePlan::label_text(current.as_deref())
                        ),
                    ));
                    (SwitchMode::Rollback, end(recorded))
                }
                Some(Err(why)) => {
                    checks.push(TakeoverCheck::hard_fail(
                        CheckKind::PreviousRevision,
                        format!("the record {PREVIOUS_REVISION_ANNOTATION} is unreadable: {why}"),
                    ));
                    (SwitchMode::Rollback, from.clone())
                }
                None => {
                    checks.push(TakeoverCheck::hard_fail(
                        CheckKind::PreviousRevision,
                        format!(
                            "the Gateway has no {PREVIOUS_REVISION_ANNOTATION} annotation: it was never moved with gateway-switch, so there is nothing to roll back to; pass --to REVISION"
                        ),
                    ));
                    (SwitchMode::Rollback, from.clone())
                }
            }
        }
    };
    checks.push(target_check(&to, control_plane));
    checks.push(
        match to
            .revision
            .as_deref()
            .and_then(|r| control_plane.revision(r))
        {
            Some(r) if r.is_ready() => TakeoverCheck::pass(
                CheckKind::IstiodReady,
                format!("{} Ready ({}/{})", r.deployment, r.ready, r.desired),
            ),
            Some(r) => TakeoverCheck::hard_fail(
                CheckKind::IstiodReady,
                format!(
                    "{} has no Ready replica: nothing would render the Gateway",
                    r.deployment
                ),
            ),
            None => TakeoverCheck::hard_fail(CheckKind::IstiodReady, "no istiod to render it"),
        },
    );
    checks.push(match &gateway.deployment {
        Some(d) if d.rolled_out => TakeoverCheck::pass(
            CheckKind::RolledOut,
            format!(
                "rolled out: {} ({}/{} Ready)",
                d.name, d.ready_replicas, d.replicas
            ),
        ),
        Some(d) => TakeoverCheck::soft_fail(
            CheckKind::RolledOut,
            format!(
                "{}: rollout in progress ({})",
                d.name,
                d.rollout.as_deref().unwrap_or("?")
            ),
        ),
        None => TakeoverCheck::soft_fail(
            CheckKind::RolledOut,
            format!("no Deployment {} rendered yet", gateway.rendered_name),
        ),
    });
    checks.push(if gateway.programmed() {
        TakeoverCheck::pass(CheckKind::Programmed, "Programmed now")
    } else {
        TakeoverCheck::soft_fail(
            CheckKind::Programmed,
            match info.programmed() {
                Some(c) if c.is_true() => {
                    "Programmed was written for an older generation".to_string()
                }
                Some(c) => format!("Programmed is {} ({}): {}", c.status, c.reason, c.message),
                None => "no Programmed condition".to_string(),
            },
        )
    });
    checks.push(if options.endpoint_slices_readable {
        TakeoverCheck::pass(
            CheckKind::EndpointsReadable,
            "EndpointSlices can be read to verify the move",
        )
    } else {
        TakeoverCheck::hard_fail(
            CheckKind::EndpointsReadable,
            "EndpointSlices cannot be read, so the move could not be verified or undone automatically",
        )
    });

    let unchanged = to.label == current;
    let verdict = if checks.iter().any(|c| !c.passed && c.hard) {
        Verdict::Refused
    } else if unchanged {
        Verdict::AlreadySelected
    } else if checks.iter().any(|c| !c.passed && !options.force) {
        Verdict::Refused
    } else if checks.iter().any(|c| !c.passed) {
        Verdict::Forced
    } else {
        Verdict::Proceed
    };
    let action = (!unchanged && verdict != Verdict::Refused).then(|| {
        let target = ObjectRef::namespaced(ObjectKind::Gateway, &info.namespace, &info.name);
        let why = format!(
            "{} the Gateway from {} ({}) to {} ({}): istiod {} re-renders {}",
            match mode {
                SwitchMode::Switch => "move",
                SwitchMode::Rollback => "roll back",
            },
            MovePlan::label_text(current.as_deref()),
            from.revision.as_deref().unwrap_or("no revision"),
            MovePlan::label_text(to.label.as_deref()),
            to.revision.as_deref().unwrap_or("no revision"),
            to.revision.as_deref().unwrap_or("?"),
            gateway.rendered_name
        );
        let write = Write::patch(
            target.clone(),
            Patch::Merge(move_patch(info, to.label.as_deref(), now)),
            why.clone(),
        )
        .at_version(&info.resource_version);
        let undo = Write::patch(
            target,
            Patch::Merge(undo_patch(info)),
            format!(
                "put the Gateway back to {}",
                MovePlan::label_text(current.as_deref())
            ),
        );
        SwitchAction {
            target: format!("gateway/{}", info.name),
            patch_type: Patch::Merge(Value::Null).content_type(),
            write,
            undo,
            reason: why,
        }
    });
    MovePlan {
        namespace: info.namespace.clone(),
        gateway: info.name.clone(),
        class: info.class.clone(),
        kind: gateway.kind,
        deployment: gateway.rendered_name.clone(),
        service: gateway.rendered_name.clone(),
        mode,
        from,
        to,
        prechecks: checks,
        force: options.force,
        verdict,
        action,
    }
}

fn target_check(to: &MoveEnd, control_plane: &ControlPlane) -> TakeoverCheck {
    match (&to.revision, &to.label) {
        (Some(revision), Some(label)) if label != revision => TakeoverCheck::pass(
            CheckKind::TargetRevision,
            format!(
                "{label} is a tag of revision {revision} (proxy {})",
                to.version.as_deref().unwrap_or("?")
            ),
        ),
        (Some(revision), _) => TakeoverCheck::pass(
            CheckKind::TargetRevision,
            format!(
                "revision {revision} (proxy {}){}",
                to.version.as_deref().unwrap_or("?"),
                match to.revision_from {
                    RevisionSource::Gateway => "",
                    RevisionSource::Namespace => ", from its namespace's label",
                    RevisionSource::Default => ", the default",
                }
            ),
        ),
        (None, label) => {
            let revisions: Vec<&str> = control_plane
                .revisions
                .iter()
                .map(|r| r.revision.as_str())
                .collect();
            let tags: Vec<&str> = control_plane.tags.iter().map(|t| t.name.as_str()).collect();
            TakeoverCheck::hard_fail(
                CheckKind::TargetRevision,
                format!(
                    "{} names no revision or tag here (revisions: {}; tags: {})",
                    label.as_deref().unwrap_or("the default"),
                    if revisions.is_empty() {
                        "none".to_string()
                    } else {
                        revisions.join(", ")
                    },
                    if tags.is_empty() {
                        "none".to_string()
                    } else {
                        tags.join(", ")
                    }
                ),
            )
        }
    }
}

fn move_patch(info: &GatewayInfo, label: Option<&str>, now: DateTime<Utc>) -> Value {
    json!({
        "metadata": {
            "labels": {REV_LABEL: label},
            "annotations": {
                PREVIOUS_REVISION_ANNOTATION: record(info.labels.get(REV_LABEL).map(String::as_str)),
                SWITCHED_AT_ANNOTATION: now.to_rfc3339_opts(SecondsFormat::Secs, true),
            },
        }
    })
}

/// The label and both annotations exactly as they were (absent ones removed).
fn undo_patch(info: &GatewayInfo) -> Value {
    json!({
        "metadata": {
            "labels": {REV_LABEL: info.labels.get(REV_LABEL)},
            "annotations": {
                PREVIOUS_REVISION_ANNOTATION: info.annotations.get(PREVIOUS_REVISION_ANNOTATION),
                SWITCHED_AT_ANNOTATION: info.annotations.get(SWITCHED_AT_ANNOTATION),
            },
        }
    })
}

/// Whether `fresh` (a Gateway as read) carries the labels and annotations
/// `write`'s merge patch sets (removed ones absent): how the engine tells,
/// after a 409, a write the server already stored, and a Gateway whose
/// label and record are still as planned from one someone else changed.
pub fn gateway_shows(fresh: &Value, write: &Write) -> bool {
    let patch = write.body_to_send();
    let field = |section: &str, key: &str| {
        fresh
            .get("metadata")
            .and_then(|m| m.get(section))
            .and_then(|s| s.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    };
    ["labels", "annotations"].iter().all(|section| {
        patch
            .pointer(&format!("/metadata/{section}"))
            .and_then(Value::as_object)
            .is_none_or(|wanted| {
                wanted
                    .iter()
                    .all(|(key, value)| field(section, key) == *value)
            })
    })
}

/// What the wait watches: the Gateway, its Deployment, its pods and its
/// Service's EndpointSlices, as last seen.
#[derive(Clone, Debug, Default)]
pub struct MoveState {
    pub gateway: Option<GatewayInfo>,
    pub deployment: Option<Deployment>,
    pub pods: Vec<PodInfo>,
    pub slices: Vec<EndpointSliceInfo>,
}

/// How far a move has got, judged from one [`MoveState`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MoveView {
    /// The Gateway's `istio.io/rev` now.
    pub label: Option<String>,
    /// The revision that rendered the Deployment's template now.
    pub rendered_by: Option<String>,
    /// The template's `istio-proxy` image now.
    pub image: Option<String>,
    /// `complete`, or what the rollout waits for.
    pub rollout: String,
    /// Live pods, and how many run the target image.
    pub pods: usize,
    pub pods_on_target: usize,
    pub programmed: bool,
    /// The Service's endpoints against the pods on the target image.
    pub endpoints: EndpointView,
    /// Everything holds.
    pub converged: bool,
    /// It will not get there by itself (a rollout past its deadline, the
    /// label changed by someone else).
    pub failed: Option<String>,
}

impl MoveView {
    /// One line for progress: what is still missing.
    pub fn describe(&self, target: &MoveEnd) -> String {
        if let Some(why) = &self.failed {
            return why.clone();
        }
        let mut parts = Vec::new();
        if self.label != target.label {
            parts.push(format!(
                "the Gateway has {}",
                MovePlan::label_text(self.label.as_deref())
            ));
        }
        if self.rendered_by != target.revision {
            parts.push(format!(
                "waiting for istiod {} to re-render it (rendered by {})",
                target.revision.as_deref().unwrap_or("?"),
                self.rendered_by.as_deref().unwrap_or("nobody")
            ));
        } else {
            parts.push(format!("rollout {}", self.rollout));
        }
        parts.push(format!(
            "{} of {} pods on {}",
            self.pods_on_target,
            self.pods,
            target.version.as_deref().unwrap_or("the target proxy")
        ));
        parts.push(if self.programmed {
            "Programmed".to_string()
        } else {
            "not Programmed".to_string()
        });
        parts.push(format!("endpoints: {}", self.endpoints.describe()));
        parts.join("; ")
    }
}

/// Judges one state against `target`: the pure condition of the wait.
pub fn move_view(state: &MoveState, target: &MoveEnd) -> MoveView {
    let label = state
        .gateway
        .as_ref()
        .and_then(|g| g.labels.get(REV_LABEL).cloned());
    let template = state
        .deployment
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.template.metadata.as_ref());
    let rendered_by = template
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(TEMPLATE_REVISION_ANNOTATION).cloned());
    let image = state
        .deployment
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| {
            s.containers
                .iter()
                .find(|c| c.name == crate::snapshot::ISTIO_PROXY)
        })
        .and_then(|c| c.image.clone());
    let progress = state
        .deployment
        .as_ref()
        .map(deployment_progress)
        .unwrap_or_else(|| RolloutProgress::InProgress("no Deployment yet".into()));
    let on_target = |pod: &PodInfo| {
        let Some(sidecar) = &pod.proxy.sidecar else {
            return false;
        };
        match (&target.image, &target.version) {
            (Some(expected), _) => sidecar.image == *expected,
            (None, Some(version)) => {
                image_version(&sidecar.image).is_some_and(|v| same_version(&v, version))
            }
            (None, None) => false,
        }
    };
    let live: Vec<&PodInfo> = state
        .pods
        .iter()
        .filter(|p| !p.terminating && p.phase != "Succeeded" && p.phase != "Failed")
        .collect();
    let pods_on_target = live.iter().filter(|p| on_target(p)).count();
    let programmed = state.gateway.as_ref().is_some_and(programmed_now);
    // Endpoints: the target pods are the live pods on the target image.
    let target_pods = crate::mesh::gateway_switch::EndpointTarget {
        selector: Labels::new(),
        pods: live
            .iter()
            .filter(|p| on_target(p))
            .map(|p| (p.name.to_string(), true))
            .collect(),
    };
    let known: std::collections::BTreeMap<String, bool> = state
        .pods
        .iter()
        .map(|p| (p.name.to_string(), false))
        .collect();
    let mut endpoints =
        crate::mesh::gateway_switch::endpoint_view(&state.slices, &target_pods, &known);
    // A pod the pods' watch has not delivered yet is not (yet) a target pod.
    let unseen = std::mem::take(&mut endpoints.unknown);
    endpoints.foreign.extend(unseen);
    let failed = match (&progress, &label) {
        (RolloutProgress::Failed(why), _) if rendered_by == target.revision => {
            Some(format!("the rollout failed: {why}"))
        }
        (_, now) if state.gateway.is_some() && *now != target.label => Some(format!(
            "the Gateway's label was changed to {} by someone else",
            MovePlan::label_text(now.as_deref())
        )),
        _ => None,
    };
    let template_current = rendered_by == target.revision
        && match (&target.image, &image) {
            (Some(expected), Some(image)) => expected == image,
            _ => true,
        };
    let converged = failed.is_none()
        && label == target.label
        && template_current
        && progress.is_complete()
        && !live.is_empty()
        && pods_on_target == live.len()
        && programmed
        && endpoints.converged();
    MoveView {
        label,
        rendered_by,
        image,
        rollout: match &progress {
            RolloutProgress::Complete => "complete".to_string(),
            RolloutProgress::InProgress(what) => what.clone(),
            RolloutProgress::Failed(why) => format!("failed: {why}"),
        },
        pods: live.len(),
        pods_on_target,
        programmed,
        endpoints,
        converged,
        failed,
    }
}

/// `1 pod`, `2 pods`.
pub fn pods(n: usize) -> String {
    if n == 1 {
        "1 pod".to_string()
    } else {
        format!("{n} pods")
    }
}

/// How a move ended, for the summary and the document.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MoveOutcome {
    pub result: SwitchResult,
    /// What was last seen after the move.
    pub progress: Option<MoveView>,
    /// What was last seen after putting it back.
    pub rollback_progress: Option<MoveView>,
    pub message: String,
}

/// The `-o json|yaml` document.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MoveDocument {
    pub api_version: String,
    pub kind: String,
    pub plan: MovePlan,
    pub outcome: MoveOutcome,
}

impl MoveDocument {
    pub fn new(plan: MovePlan, outcome: MoveOutcome) -> Self {
        MoveDocument {
            api_version: API_VERSION.to_string(),
            kind: "GatewayMove".to_string(),
            plan,
            outcome,
        }
    }
}

#[cfg(test)]
#[path = "gateway_move/tests.rs"]
mod tests;
