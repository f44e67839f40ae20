//! The `gateway-switch` plan: point a LoadBalancer (or NodePort) Service at
//! another revision's gateway pods by changing one value of its selector,
//! with the checks that make the cut-over safe and the patch that undoes it.
//!
//! ```text
//! snapshot (pods, gateways, control plane) ─┐
//! Service as read (selector, record, rv) ───┼─► plan() ─► SwitchPlan
//! request (--to/--rollback, --force) ───────┘      prechecks: pass/fail + reason
//!                                                  action: patch, undo patch, reason
//!                                                  verify: what the endpoints must become
//! EndpointSlices (watched) ─► endpoint_view() ─► converged? (else switch back)
//! ```
//!
//! Blue/green gateways (seed 001) run one gateway Deployment per revision,
//! each labelled with its own `version`, behind one Service whose selector
//! names one of them. The switch is one JSON merge patch: `spec.selector`
//! gets only the keys whose value changes (every other selector key is kept
//! as it is), and two annotations record the selector it replaced
//! ([`PREVIOUS_SELECTOR_ANNOTATION`], as JSON) and when
//! ([`SWITCHED_AT_ANNOTATION`]). The patch carries the Service's
//! `resourceVersion`, so a Service changed by someone else since it was read
//! is answered 409 and never overwritten.
//!
//! `--rollback` restores the recorded selector exactly (keys it lacked are
//! removed) and records the selector it replaces, so a second `--rollback`
//! goes forward again. The automatic switch-back after a failed
//! verification is different: it restores the Service as it was, record
//! included ([`SwitchAction::undo`]), as if the switch never happened.
//!
//! The prechecks are [`takeover_checks`] (shared with `status`, so both
//! agree on whether a gateway can take over) plus three of the switch's
//! own: the selector has the revision key, the selector being replaced can
//! be recorded, and EndpointSlices can be read to verify the result. Hard
//! failures (no pods, none Ready, nothing to record, no way to verify)
//! refuse always; the others refuse unless `--force`.
//!
//! Pure: the caller reads the cluster, applies the patch and watches.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::mesh::control_plane::ControlPlane;
use crate::mesh::gateways::{
    CheckKind, Gateway, SelectedPod, Takeover, TakeoverCheck, gateway_services, selector_text,
    takeover_checks,
};
use crate::snapshot::{ClusterSnapshot, EndpointSliceInfo, Labels, ServiceInfo};
use crate::write::{ObjectKind, ObjectRef, Patch, Write};

/// The annotation holding the selector a switch replaced, as a JSON object.
pub const PREVIOUS_SELECTOR_ANNOTATION: &str = "mesh-upgrade.io/previous-selector";

/// The annotation holding when the last switch happened (RFC 3339).
pub const SWITCHED_AT_ANNOTATION: &str = "mesh-upgrade.io/switched-at";

/// The label tying an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

use crate::mesh::API_VERSION;

/// What `gateway-switch` reads of the Service it patches, just before
/// planning: the patch is based on exactly this.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceState {
    pub info: ServiceInfo,
    /// `metadata.resourceVersion`: sent with the patch as a precondition.
    pub resource_version: String,
    /// The raw value of [`PREVIOUS_SELECTOR_ANNOTATION`], if present.
    pub previous_selector: Option<String>,
    /// The raw value of [`SWITCHED_AT_ANNOTATION`], if present.
    pub switched_at: Option<String>,
    /// The managers in `metadata.managedFields` (who wrote which fields).
    pub field_managers: Vec<String>,
}

impl ServiceState {
    /// The Gateway API `Gateway` istiod renders this Service for, with the
    /// evidence: the `gateway.istio.io/managed` label, an owner reference to
    /// a Gateway, or fields managed by `istio.io/gateway-controller`
    /// (istiod applies its Services by server-side apply with that field
    /// manager and `force`, so it puts back any selector it finds changed).
    pub fn istiod_gateway(&self) -> Option<(String, String)> {
        use crate::mesh::gateway_api::{GATEWAY_FIELD_MANAGER, GATEWAY_NAME_LABEL, MANAGED_LABEL};
        let labels = &self.info.labels;
        let owner = self.info.owners.iter().find(|o| {
            o.kind == "Gateway" && o.api_version.starts_with("gateway.networking.k8s.io/")
        });
        let mut evidence = Vec::new();
        if let Some(value) = labels.get(MANAGED_LABEL) {
            evidence.push(format!("label {MANAGED_LABEL}={value}"));
        }
        if let Some(owner) = owner {
            evidence.push(format!("owner Gateway {}", owner.name));
        }
        if self
            .field_managers
            .iter()
            .any(|m| m == GATEWAY_FIELD_MANAGER)
        {
            evidence.push(format!("field manager {GATEWAY_FIELD_MANAGER}"));
        }
        if evidence.is_empty() {
            return None;
        }
        let gateway = owner
            .map(|o| o.name.clone())
            .or_else(|| labels.get(GATEWAY_NAME_LABEL).cloned())
            .unwrap_or_else(|| "?".to_string());
        Some((gateway, evidence.join(", ")))
    }
}

impl From<&Service> for ServiceState {
    fn from(service: &Service) -> Self {
        let annotation = |key: &str| {
            service
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(key))
                .cloned()
        };
        ServiceState {
            info: ServiceInfo::from(service),
            resource_version: service
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default(),
            previous_selector: annotation(PREVIOUS_SELECTOR_ANNOTATION),
            switched_at: annotation(SWITCHED_AT_ANNOTATION),
            field_managers: service
                .metadata
                .managed_fields
                .iter()
                .flatten()
                .filter_map(|f| f.manager.clone())
                .collect(),
        }
    }
}

/// Parse a recorded selector: a non-empty JSON object of strings.
pub fn parse_recorded_selector(text: &str) -> Result<Labels, String> {
    let parsed: Labels = serde_json::from_str(text)
        .map_err(|e| format!("{text:?} is not a JSON object of label values ({e})"))?;
    if parsed.is_empty() {
        return Err(format!("{text:?} records an empty selector"));
    }
    Ok(parsed)
}

/// The one label-value check, re-exported where `--to` is validated.
pub use crate::selector::validate_label_value;

/// The Service to switch when `--service` is not given: the only external
/// Service in `namespace` in front of gateway pods (the ones `status` lists).
/// None or several is a usage error that lists what there is.
pub fn discover_service(
    snapshot: &ClusterSnapshot,
    gateways: &[Gateway],
    control_plane: &ControlPlane,
    namespace: &str,
) -> Result<String, Error> {
    let found: Vec<(String, String)> = gateway_services(snapshot, gateways, control_plane)
        .into_iter()
        .filter(|s| s.namespace == namespace)
        .map(|s| {
            let described = format!(
                "{} ({}, selector {})",
                s.name,
                s.type_,
                selector_text(&s.selector)
            );
            (s.name, described)
        })
        .collect();
    match found.as_slice() {
        [] => Err(Error::Usage(format!(
            "no LoadBalancer or NodePort Service in namespace {namespace} selects gateway pods: pass --service NAME to name the Service to switch"
        ))),
        [(name, _)] => Ok(name.clone()),
        several => Err(Error::Usage(format!(
            "{} Services in namespace {namespace} select gateway pods; pass --service NAME with one of: {}",
            several.len(),
            several
                .iter()
                .map(|(_, described)| described.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ))),
    }
}

/// What the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchRequest {
    /// `--to VALUE`: set `selector_key` to `value`.
    To { selector_key: String, value: String },
    /// `--rollback`: restore the recorded selector.
    Rollback,
}

/// The request and its modifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchOptions {
    pub request: SwitchRequest,
    /// `--force`: soft precheck failures do not refuse.
    pub force: bool,
    /// Whether EndpointSlices could be read (the switch is verified on them).
    pub endpoint_slices_readable: bool,
}

/// `switch` or `rollback`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwitchMode {
    Switch,
    Rollback,
}

/// What the plan comes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every precheck passed.
    Proceed,
    /// Soft prechecks failed and `--force` overrides them.
    Forced,
    /// The Service already has the target selector: nothing to write.
    AlreadySelected,
    /// A hard precheck failed, or a soft one without `--force`.
    Refused,
}

/// The one write of a switch or a move.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchAction {
    /// `service/<name>` or `gateway/<name>`, as kubectl names it.
    pub target: String,
    /// The content type of [`SwitchAction::write`]'s patch, for the document.
    pub patch_type: &'static str,
    /// The merge patch of the object on the `resourceVersion` it was planned
    /// on (the document shows the body sent, as `patch`).
    #[serde(rename = "patch", serialize_with = "crate::write::serialize_body")]
    pub write: Write,
    /// The merge patch that puts the object back as it was (selector or
    /// label, and the record), sent when verification fails; the engine
    /// sends it on the `resourceVersion` the switch produced.
    #[serde(rename = "undoPatch", serialize_with = "crate::write::serialize_body")]
    pub undo: Write,
    pub reason: String,
}

/// What the Service switch's plan and the Gateway move's have in common:
/// prechecks that refuse unless `--force` overrides them, a verdict, at
/// most one patch with its undo, a refusal and a question. The provided
/// methods are the rules both follow; `render` and the command's flow take
/// either plan through this.
pub trait CutoverPlan {
    fn prechecks(&self) -> &[TakeoverCheck];
    /// `--force`.
    fn force(&self) -> bool;
    fn verdict(&self) -> Verdict;
    /// The write; `None` when there is nothing to write.
    fn action(&self) -> Option<&SwitchAction>;
    /// What a refusal refuses: `refusing to switch Service a/b to c=d`.
    fn refusing(&self) -> String;
    /// The question asked before writing.
    fn question(&self) -> String;

    /// The prechecks that refuse it.
    fn blocking(&self) -> Vec<&TakeoverCheck> {
        self.prechecks()
            .iter()
            .filter(|c| !c.passed && (c.hard || !self.force()))
            .collect()
    }

    /// Soft failures `--force` overrides.
    fn overridden(&self) -> Vec<&TakeoverCheck> {
        if !self.force() {
            return Vec::new();
        }
        self.prechecks()
            .iter()
            .filter(|c| !c.passed && !c.hard)
            .collect()
    }

    /// Number of writes: 0 or 1.
    fn changes(&self) -> usize {
        match self.verdict() {
            Verdict::Proceed | Verdict::Forced => usize::from(self.action().is_some()),
            Verdict::AlreadySelected | Verdict::Refused => 0,
        }
    }

    /// The sentence a refusal exits with.
    fn refusal(&self) -> Option<String> {
        if self.verdict() != Verdict::Refused {
            return None;
        }
        let blocking = self.blocking();
        let (hard, soft): (Vec<&TakeoverCheck>, Vec<&TakeoverCheck>) =
            blocking.iter().partition(|c| c.hard);
        let reasons = |checks: &[&TakeoverCheck]| {
            checks
                .iter()
                .map(|c| format!("{}: {}", c.check, c.reason))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let names = |checks: &[&TakeoverCheck]| {
            checks
                .iter()
                .map(|c| c.check.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Hard failures first and alone: the soft ones they cause (no pods,
        // so no ports) would only bury them.
        let detail = if hard.is_empty() {
            format!("{} (--force overrides {})", reasons(&soft), names(&soft))
        } else if soft.is_empty() {
            reasons(&hard)
        } else {
            format!("{}; also failed: {}", reasons(&hard), names(&soft))
        };
        Some(format!("{}: {detail}", self.refusing()))
    }
}

/// What a Service's endpoints must become for a switch to count as done.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointTarget {
    pub selector: Labels,
    /// Pods the selector matched when planned, and whether each was Ready.
    pub pods: BTreeMap<String, bool>,
}

impl EndpointTarget {
    fn of(pods: &[SelectedPod], selector: &Labels) -> Self {
        EndpointTarget {
            selector: selector.clone(),
            pods: pods.iter().map(|p| (p.name.clone(), p.ready)).collect(),
        }
    }
}

/// The whole plan: what is switched, the prechecks, the patch.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchPlan {
    pub namespace: String,
    pub service: String,
    #[serde(rename = "serviceType")]
    pub service_type: String,
    pub mode: SwitchMode,
    /// The selector key whose value changes (`None` when several or none do).
    pub selector_key: Option<String>,
    /// The selector now.
    pub from_selector: Labels,
    /// The selector after the switch (empty when a rollback has no record).
    pub to_selector: Labels,
    /// Revisions of the gateways the Service selects now.
    pub from_revisions: Vec<String>,
    /// The revision the target pods should run.
    pub target_revision: Option<String>,
    /// Gateway Deployments behind the target pods.
    pub target_gateways: Vec<String>,
    pub target_pods: Vec<SelectedPod>,
    pub prechecks: Vec<TakeoverCheck>,
    pub force: bool,
    pub verdict: Verdict,
    /// The write; `None` when the selector is already the target.
    pub action: Option<SwitchAction>,
    /// What the endpoints must become after the switch.
    pub verify: EndpointTarget,
    /// What they must become again after a switch-back.
    pub verify_rollback: EndpointTarget,
}

impl SwitchPlan {
    /// `istio-gateways/istio-ingressgateway`.
    pub fn service_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.service)
    }
}

impl CutoverPlan for SwitchPlan {
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
            SwitchMode::Switch if self.to_selector.is_empty() => {
                format!("refusing to switch Service {}", self.service_ref())
            }
            SwitchMode::Switch => format!(
                "refusing to switch Service {} to {}",
                self.service_ref(),
                selector_text(&self.to_selector)
            ),
            SwitchMode::Rollback if self.to_selector.is_empty() => {
                format!("refusing to roll back Service {}", self.service_ref())
            }
            SwitchMode::Rollback => format!(
                "refusing to roll back Service {} to {}",
                self.service_ref(),
                selector_text(&self.to_selector)
            ),
        }
    }

    fn question(&self) -> String {
        match self.mode {
            SwitchMode::Switch => format!(
                "Point Service {} at {}?",
                self.service_ref(),
                selector_text(&self.to_selector)
            ),
            SwitchMode::Rollback => format!(
                "Roll Service {} back to {}?",
                self.service_ref(),
                selector_text(&self.to_selector)
            ),
        }
    }
}

/// Build the plan for `service` (read just before) from the snapshot.
pub fn plan(
    snapshot: &ClusterSnapshot,
    gateways: &[Gateway],
    control_plane: &ControlPlane,
    service: &ServiceState,
    options: &SwitchOptions,
    now: DateTime<Utc>,
) -> SwitchPlan {
    let info = &service.info;
    let from = info.selector.clone();
    let mut checks = Vec::new();
    if let Some((gateway, evidence)) = service.istiod_gateway() {
        // istiod owns this selector: any flip is undone at its next apply.
        checks.push(TakeoverCheck::hard_fail(
            CheckKind::IstiodManaged,
            format!(
                "istiod renders Service {}/{} for Gateway {gateway} ({evidence}) and would put its selector back; move the Gateway instead: kubectl mesh-upgrade gateway-switch -n {} --gateway {gateway} {}",
                info.namespace,
                info.name,
                info.namespace,
                match &options.request {
                    SwitchRequest::To { value, .. } => format!("--to {value}"),
                    SwitchRequest::Rollback => "--rollback".to_string(),
                }
            ),
        ));
        let mode = match &options.request {
            SwitchRequest::To { .. } => SwitchMode::Switch,
            SwitchRequest::Rollback => SwitchMode::Rollback,
        };
        return refused_without_target(service, gateways, snapshot, checks, options, mode);
    }
    let (mode, to, value) = match &options.request {
        SwitchRequest::To {
            selector_key,
            value,
        } => {
            checks.push(selector_key_check(&from, selector_key));
            checks.push(if from.is_empty() {
                TakeoverCheck::hard_fail(
                    CheckKind::PreviousSelector,
                    "the Service has no selector, so there is nothing to record or switch",
                )
            } else {
                TakeoverCheck::pass(
                    CheckKind::PreviousSelector,
                    format!(
                        "{} is recorded in {PREVIOUS_SELECTOR_ANNOTATION} for --rollback",
                        selector_text(&from)
                    ),
                )
            });
            let mut to = from.clone();
            to.insert(selector_key.clone(), value.clone());
            (SwitchMode::Switch, to, Some(value.clone()))
        }
        SwitchRequest::Rollback => {
            let recorded = match service.previous_selector.as_deref() {
                None => Err(format!(
                    "the Service has no {PREVIOUS_SELECTOR_ANNOTATION} annotation: no switch by kubectl mesh-upgrade was recorded, so there is nothing to roll back to"
                )),
                Some(text) => parse_recorded_selector(text)
                    .map_err(|e| format!("{PREVIOUS_SELECTOR_ANNOTATION}: {e}")),
            };
            match recorded {
                Ok(to) => {
                    let when = service
                        .switched_at
                        .as_deref()
                        .map(|t| format!(" (switched away at {t})"))
                        .unwrap_or_default();
                    checks.push(TakeoverCheck::pass(
                        CheckKind::PreviousSelector,
                        format!(
                            "restores the recorded {}{when}; {} is recorded in its place",
                            selector_text(&to),
                            selector_text(&from)
                        ),
                    ));
                    let changed = changed_keys(&from, &to);
                    let value = match changed.as_slice() {
                        [key] => to.get(*key).cloned(),
                        _ => None,
                    };
                    (SwitchMode::Rollback, to, value)
                }
                Err(reason) => {
                    checks.push(TakeoverCheck::hard_fail(
                        CheckKind::PreviousSelector,
                        reason,
                    ));
                    return refused_without_target(
                        service,
                        gateways,
                        snapshot,
                        checks,
                        options,
                        SwitchMode::Rollback,
                    );
                }
            }
        }
    };
    checks.push(if options.endpoint_slices_readable {
        TakeoverCheck::pass(
            CheckKind::EndpointsReadable,
            "EndpointSlices can be read to verify the switch",
        )
    } else {
        TakeoverCheck::hard_fail(
            CheckKind::EndpointsReadable,
            "EndpointSlices cannot be read, so the switch could not be verified or rolled back automatically",
        )
    });

    let takeover = Takeover::of(snapshot, gateways, &info.namespace, &to);
    let mut pod_checks = takeover_checks(&takeover, info, value.as_deref(), control_plane);
    if takeover.pods.is_empty() {
        if let (Some(first), Some(key)) = (pod_checks.first_mut(), changed_keys(&from, &to).first())
        {
            let values = gateway_values(gateways, &info.namespace, key);
            if !values.is_empty() {
                first.reason.push_str(&format!(
                    " (gateway Deployments here have {key}={})",
                    values.join(", ")
                ));
            }
        }
    }
    checks.extend(pod_checks);
    let current = Takeover::of(snapshot, gateways, &info.namespace, &from);

    let changed = changed_keys(&from, &to);
    let selector_key = match changed.as_slice() {
        [one] => Some(one.to_string()),
        _ => match &options.request {
            SwitchRequest::To { selector_key, .. } => Some(selector_key.clone()),
            SwitchRequest::Rollback => None,
        },
    };
    let verdict = if changed.is_empty() {
        Verdict::AlreadySelected
    } else if checks
        .iter()
        .any(|c| !c.passed && (c.hard || !options.force))
    {
        Verdict::Refused
    } else if checks.iter().any(|c| !c.passed) {
        Verdict::Forced
    } else {
        Verdict::Proceed
    };
    let action = (!changed.is_empty()).then(|| {
        let target = ObjectRef::namespaced(ObjectKind::Service, &info.namespace, &info.name);
        let why = reason(mode, &from, &to, &takeover);
        let write = Write::patch(
            target.clone(),
            Patch::Merge(switch_patch(service, &to, now)),
            why.clone(),
        )
        .at_version(&service.resource_version);
        let undo = Write::patch(
            target,
            Patch::Merge(undo_patch(service, &to)),
            format!("put the selector back to {}", selector_text(&from)),
        );
        SwitchAction {
            target: format!("service/{}", info.name),
            patch_type: Patch::Merge(Value::Null).content_type(),
            write,
            undo,
            reason: why,
        }
    });
    let mut from_revisions: Vec<String> = current
        .gateways
        .iter()
        .filter_map(|g| g.revision.clone())
        .collect();
    from_revisions.sort();
    from_revisions.dedup();
    SwitchPlan {
        namespace: info.namespace.clone(),
        service: info.name.clone(),
        service_type: info.type_.clone(),
        mode,
        selector_key,
        from_selector: from.clone(),
        to_selector: to.clone(),
        from_revisions,
        target_revision: takeover.target_revision(value.as_deref(), control_plane),
        target_gateways: takeover.gateway_names(),
        target_pods: takeover.pods.clone(),
        prechecks: checks,
        force: options.force,
        verdict,
        action,
        verify: EndpointTarget::of(&takeover.pods, &to),
        verify_rollback: EndpointTarget::of(&current.pods, &from),
    }
}

fn selector_key_check(from: &Labels, key: &str) -> TakeoverCheck {
    match from.get(key) {
        Some(value) => TakeoverCheck::pass(
            CheckKind::SelectorKey,
            format!("{key} picks the revision (now {value})"),
        ),
        None if from.is_empty() => TakeoverCheck::hard_fail(
            CheckKind::SelectorKey,
            format!("the Service has no selector, so no {key} to change"),
        ),
        None => TakeoverCheck::hard_fail(
            CheckKind::SelectorKey,
            format!(
                "the selector {} has no key {key}: pass --selector-key with the key that names the revision (it has {})",
                selector_text(from),
                from.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ),
    }
}

/// A rollback with no usable record, or a Service istiod manages: the plan
/// is only the failed check.
fn refused_without_target(
    service: &ServiceState,
    gateways: &[Gateway],
    snapshot: &ClusterSnapshot,
    checks: Vec<TakeoverCheck>,
    options: &SwitchOptions,
    mode: SwitchMode,
) -> SwitchPlan {
    let info = &service.info;
    let current = Takeover::of(snapshot, gateways, &info.namespace, &info.selector);
    let mut from_revisions: Vec<String> = current
        .gateways
        .iter()
        .filter_map(|g| g.revision.clone())
        .collect();
    from_revisions.sort();
    from_revisions.dedup();
    SwitchPlan {
        namespace: info.namespace.clone(),
        service: info.name.clone(),
        service_type: info.type_.clone(),
        mode,
        selector_key: None,
        from_selector: info.selector.clone(),
        to_selector: Labels::new(),
        from_revisions,
        target_revision: None,
        target_gateways: Vec::new(),
        target_pods: Vec::new(),
        prechecks: checks,
        force: options.force,
        verdict: Verdict::Refused,
        action: None,
        verify: EndpointTarget::of(&[], &Labels::new()),
        verify_rollback: EndpointTarget::of(&current.pods, &info.selector),
    }
}

/// Values of `key` on the gateway templates of a namespace.
fn gateway_values(gateways: &[Gateway], namespace: &str, key: &str) -> Vec<String> {
    let values: BTreeSet<String> = gateways
        .iter()
        .filter(|g| g.namespace == namespace)
        .filter_map(|g| g.template_labels.get(key).cloned())
        .collect();
    values.into_iter().collect()
}

/// Keys whose value differs between two selectors (added, changed or removed).
fn changed_keys<'a>(from: &'a Labels, to: &'a Labels) -> Vec<&'a str> {
    let keys: BTreeSet<&str> = from.keys().chain(to.keys()).map(String::as_str).collect();
    keys.into_iter()
        .filter(|k| from.get(*k) != to.get(*k))
        .collect()
}

/// The `spec.selector` part of a merge patch from `from` to `to`: only the
/// keys that change, a removed key as `null`, so the rest stay untouched.
fn selector_patch(from: &Labels, to: &Labels) -> Value {
    let mut patch = Map::new();
    for key in changed_keys(from, to) {
        patch.insert(
            key.to_string(),
            to.get(key)
                .map_or(Value::Null, |v| Value::String(v.clone())),
        );
    }
    Value::Object(patch)
}

/// The selector as recorded: compact JSON, keys sorted.
fn record(selector: &Labels) -> String {
    serde_json::to_string(selector).unwrap_or_else(|_| "{}".to_string())
}

fn switch_patch(service: &ServiceState, to: &Labels, now: DateTime<Utc>) -> Value {
    let from = &service.info.selector;
    let metadata = json!({
        "annotations": {
            PREVIOUS_SELECTOR_ANNOTATION: record(from),
            SWITCHED_AT_ANNOTATION: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    });
    json!({
        "metadata": metadata,
        "spec": {"selector": selector_patch(from, to)},
    })
}

fn undo_patch(service: &ServiceState, to: &Labels) -> Value {
    json!({
        "metadata": {
            "annotations": {
                PREVIOUS_SELECTOR_ANNOTATION: service.previous_selector,
                SWITCHED_AT_ANNOTATION: service.switched_at,
            }
        },
        "spec": {"selector": selector_patch(to, &service.info.selector)},
    })
}

fn reason(mode: SwitchMode, from: &Labels, to: &Labels, takeover: &Takeover<'_>) -> String {
    let gateways = if takeover.gateways.is_empty() {
        "no gateway Deployment".to_string()
    } else {
        takeover.gateway_names().join(", ")
    };
    let ready = takeover.pods.iter().filter(|p| p.ready).count();
    let verb = match mode {
        SwitchMode::Switch => "switch",
        SwitchMode::Rollback => "roll back",
    };
    format!(
        "{verb} the selector from {} to {}: traffic goes to {gateways} ({ready} Ready pods)",
        selector_text(from),
        selector_text(to)
    )
}

/// The Service's endpoints as verification sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    /// Ready endpoints of target pods.
    pub ready: Vec<String>,
    /// Target pods listed not Ready that were Ready when planned (or are new).
    pub not_ready: Vec<String>,
    /// Target pods listed not Ready that were already not Ready when planned
    /// (a `--force`d switch): tolerated.
    pub tolerated: Vec<String>,
    /// Endpoints of pods outside the target selection (still the old
    /// gateway's, or an endpoint without a pod).
    pub foreign: Vec<String>,
    /// Pods the plan did not know: look them up, then evaluate again.
    pub unknown: Vec<String>,
}

impl EndpointView {
    /// Only Ready pods of the target (and at least one).
    pub fn converged(&self) -> bool {
        !self.ready.is_empty()
            && self.not_ready.is_empty()
            && self.foreign.is_empty()
            && self.unknown.is_empty()
    }

    /// `2 Ready; 2 from other pods (…)`.
    pub fn describe(&self) -> String {
        let list = |names: &[String]| {
            let shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
            let more = names.len().saturating_sub(3);
            if more > 0 {
                format!("{} and {more} more", shown.join(", "))
            } else {
                shown.join(", ")
            }
        };
        let mut parts = vec![format!("{} Ready", self.ready.len())];
        if !self.not_ready.is_empty() {
            parts.push(format!(
                "{} not Ready ({})",
                self.not_ready.len(),
                list(&self.not_ready)
            ));
        }
        if !self.tolerated.is_empty() {
            parts.push(format!(
                "{} not Ready, as when planned ({})",
                self.tolerated.len(),
                list(&self.tolerated)
            ));
        }
        if !self.foreign.is_empty() {
            parts.push(format!(
                "{} from other pods ({})",
                self.foreign.len(),
                list(&self.foreign)
            ));
        }
        if !self.unknown.is_empty() {
            parts.push(format!("{} being looked up", self.unknown.len()));
        }
        parts.join("; ")
    }
}

/// Sort the endpoints of `slices` against `target`. `looked_up` says, for
/// pods the plan did not know, whether each matches the target selector
/// (pods absent from it come back as `unknown`). A pod listed in several
/// slices (dual-stack) counts once, Ready only if Ready in all.
pub fn endpoint_view(
    slices: &[EndpointSliceInfo],
    target: &EndpointTarget,
    looked_up: &BTreeMap<String, bool>,
) -> EndpointView {
    let mut pods: BTreeMap<String, bool> = BTreeMap::new();
    let mut without_pod = 0;
    for endpoint in slices.iter().flat_map(|s| &s.endpoints) {
        match &endpoint.pod {
            Some(name) => {
                let ready = pods.entry(name.clone()).or_insert(true);
                *ready = *ready && endpoint.ready;
            }
            None => without_pod += 1,
        }
    }
    let mut view = EndpointView::default();
    for (name, ready) in pods {
        let is_target = match target.pods.get(&name) {
            Some(_) => true,
            None => match looked_up.get(&name) {
                Some(matches) => *matches,
                None => {
                    view.unknown.push(name);
                    continue;
                }
            },
        };
        if !is_target {
            view.foreign.push(name);
        } else if ready {
            view.ready.push(name);
        } else if target.pods.get(&name) == Some(&false) {
            view.tolerated.push(name);
        } else {
            view.not_ready.push(name);
        }
    }
    if without_pod > 0 {
        view.foreign.push(format!(
            "{without_pod} endpoint{} without a pod",
            if without_pod == 1 { "" } else { "s" }
        ));
    }
    view
}

/// How a run ended, in one word of the `-o json` document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwitchResult {
    Refused,
    NothingToDo,
    DryRun,
    ServerDryRun,
    Switched,
    /// Verification failed and the switch was undone (and verified).
    RolledBack,
    /// Verification failed and the undo failed or could not be verified.
    RollbackFailed,
    Interrupted,
}

/// How a run ended, for the summary and the `-o json` document.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchOutcome {
    pub result: SwitchResult,
    /// The endpoints as last seen after the switch.
    pub endpoints: Option<EndpointView>,
    /// The endpoints as last seen after the switch-back.
    pub rollback_endpoints: Option<EndpointView>,
    /// One sentence on what happened.
    pub message: String,
}

/// The `-o json|yaml` document.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchDocument {
    pub api_version: String,
    pub kind: String,
    pub plan: SwitchPlan,
    pub outcome: SwitchOutcome,
}

impl SwitchDocument {
    pub fn new(plan: SwitchPlan, outcome: SwitchOutcome) -> Self {
        SwitchDocument {
            api_version: API_VERSION.to_string(),
            kind: "GatewaySwitch".to_string(),
            plan,
            outcome,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
