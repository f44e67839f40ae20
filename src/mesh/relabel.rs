//! The `relabel` plan: which namespaces move to which revision, with the
//! exact patch each one gets, and why every other namespace is left alone.
//!
//! ```text
//! namespaces (labels, record annotation, resourceVersion) ─┐
//! control plane (revisions, tags, webhooks) ───────────────┼─► Planner ─► RelabelPlan
//! request (--to/--undo, -n/-l/-A, --from, --force) ────────┘     │        changes: patch + reason
//!                                                                │        skipped: reason
//!                                   409 on one namespace ─► evaluate(fresh namespace) ─► new patch
//! ```
//!
//! Moving a namespace means changing its two injection labels: to a revision
//! or tag, `istio.io/rev=<target>` with `istio-injection` removed (the legacy
//! label would win over `istio.io/rev`); to `default-injection`,
//! `istio-injection=enabled` with `istio.io/rev` removed. Nothing else on the
//! namespace is touched.
//!
//! The way back is recorded on the namespace itself, in the annotation
//! [`PREVIOUS_LABELS_ANNOTATION`]: the two labels as they were, as JSON with
//! explicit nulls for absent ones (`{"istio-injection":"enabled","istio.io/rev":null}`),
//! so undo can remove a label that was not there. The first relabel writes
//! it and later relabels keep it: undo returns to the labels the namespace
//! had before mesh-upgrade first touched it, the state known to work, not to
//! some intermediate canary. A relabel that lands exactly on the recorded
//! labels removes the record, since there is nothing left to undo.
//!
//! Each patch is a JSON merge patch on `metadata` that carries the
//! namespace's `resourceVersion`: the API server answers 409 when someone
//! changed the namespace since it was read, and the caller re-reads it and
//! asks [`Planner::evaluate`] again, so another writer's edit is never
//! overwritten.
//!
//! Pure: the caller reads the cluster and applies the patches.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::mesh::control_plane::ControlPlane;
use crate::mesh::injection::{
    DATAPLANE_MODE_LABEL, INJECTION_LABEL, InjectionOutcome, REV_LABEL, expected_revision,
};
use crate::selector::LabelSelector;
use crate::snapshot::{ClusterSnapshot, Labels, NamespaceInfo};
use crate::write::{ObjectKind, ObjectRef, Patch, Write};

/// The annotation holding a namespace's injection labels from before its first relabel.
pub const PREVIOUS_LABELS_ANNOTATION: &str = "mesh-upgrade.io/previous-injection-labels";

/// The `--to` value meaning `istio-injection=enabled` (the default revision).
pub const DEFAULT_INJECTION: &str = "default-injection";

/// Namespaces Kubernetes itself runs in: never relabelled unless named with `--force`.
pub const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

use crate::mesh::API_VERSION;

/// The two injection labels, each with its value or `None` when absent.
/// Serialised with explicit nulls, which is the record's format.
pub type InjectionLabels = BTreeMap<String, Option<String>>;

/// The injection labels among `labels`.
pub fn injection_labels(labels: &Labels) -> InjectionLabels {
    [INJECTION_LABEL, REV_LABEL]
        .into_iter()
        .map(|key| (key.to_string(), labels.get(key).cloned()))
        .collect()
}

/// The injection labels a namespace on `target` carries.
fn target_labels(target_label: Option<&str>) -> InjectionLabels {
    match target_label {
        Some(rev) => InjectionLabels::from([
            (INJECTION_LABEL.to_string(), None),
            (REV_LABEL.to_string(), Some(rev.to_string())),
        ]),
        None => InjectionLabels::from([
            (INJECTION_LABEL.to_string(), Some("enabled".to_string())),
            (REV_LABEL.to_string(), None),
        ]),
    }
}

/// `istio-injection=enabled, istio.io/rev=1-22-3`, or `no injection label`.
pub fn describe_labels(labels: &InjectionLabels) -> String {
    let set: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    if set.is_empty() {
        "no injection label".to_string()
    } else {
        set.join(", ")
    }
}

/// What relabel reads of one namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct NamespaceState {
    pub info: NamespaceInfo,
    /// `metadata.resourceVersion`: sent with the patch as a precondition.
    pub resource_version: String,
    /// The raw value of [`PREVIOUS_LABELS_ANNOTATION`], if present.
    pub previous_labels: Option<String>,
}

/// From the snapshot, which keeps the resourceVersion and the record.
impl From<&NamespaceInfo> for NamespaceState {
    fn from(info: &NamespaceInfo) -> Self {
        NamespaceState {
            info: info.clone(),
            resource_version: info.resource_version.clone(),
            previous_labels: info.records.get(PREVIOUS_LABELS_ANNOTATION).cloned(),
        }
    }
}

impl From<&Namespace> for NamespaceState {
    fn from(ns: &Namespace) -> Self {
        NamespaceState::from(&NamespaceInfo::from(ns))
    }
}

/// Parse a record; only the two injection labels are taken from it (a key
/// missing from the record leaves that label as it is).
pub fn parse_record(text: &str) -> Result<InjectionLabels, String> {
    let parsed: BTreeMap<String, Option<String>> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object of labels ({e})"))?;
    let recorded: InjectionLabels = parsed
        .into_iter()
        .filter(|(k, _)| k == INJECTION_LABEL || k == REV_LABEL)
        .collect();
    if recorded.is_empty() {
        return Err(format!("records neither {INJECTION_LABEL} nor {REV_LABEL}"));
    }
    Ok(recorded)
}

/// What the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `--to <revision|tag|default-injection>`.
    Move { to: String },
    /// `--undo`.
    Undo,
}

/// Which namespaces the user selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceSelection {
    /// `-n a,b`: named explicitly (so `--force` may include excluded ones).
    Named(Vec<String>),
    /// Neither `-n` nor `-A`/`-l`: the kubeconfig context's namespace.
    Context(String),
    /// `-A`, or `-l` alone: every namespace (filtered by `-l` and `--from`).
    All,
}

/// The request, validated by the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct RelabelRequest {
    pub operation: Operation,
    pub namespaces: NamespaceSelection,
    /// `-l`: a namespace label selector.
    pub selector: Option<LabelSelector>,
    /// `--from`: only namespaces whose new pods now get this revision or tag.
    pub from: Option<String>,
    pub force: bool,
}

/// What `--to` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    Revision,
    Tag,
    DefaultInjection,
}

/// The resolved `--to`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// As given: a revision, a tag, or `default-injection`.
    pub name: String,
    pub kind: TargetKind,
    /// The istiod revision behind it.
    pub revision: Option<String>,
    /// The proxy version that revision injects.
    pub version: Option<String>,
    /// Whether that istiod has a Ready pod.
    pub ready: bool,
    /// The injection labels a namespace on this target carries.
    pub labels: InjectionLabels,
}

/// The resolved `--from`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FromFilter {
    pub name: String,
    /// The revision it resolves to; `None` when it names no revision or tag
    /// (then only namespaces labelled `istio.io/rev=<name>` match).
    pub revision: Option<String>,
}

/// What happens to the record annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordChange {
    /// Written: this is the namespace's first relabel.
    Write,
    /// Left as it is: an earlier relabel recorded the original labels.
    Keep,
    /// Removed: the namespace is back on the recorded labels.
    Remove,
}

/// One namespace that changes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceChange {
    pub namespace: String,
    /// The injection labels now.
    pub before: InjectionLabels,
    /// The injection labels after the patch.
    pub after: InjectionLabels,
    /// The revision new pods get now (`None`: no proxy).
    pub revision_before: Option<String>,
    /// The revision new pods get after the patch.
    pub revision_after: Option<String>,
    pub record: RecordChange,
    /// The JSON merge patch of the namespace, on the `resourceVersion` it
    /// was planned on (the document shows the body sent, as `patch`).
    #[serde(rename = "patch", serialize_with = "crate::write::serialize_body")]
    pub write: Write,
    /// Why it is in the plan, in one sentence.
    pub reason: String,
    /// What the user should know about this namespace.
    pub notes: Vec<String>,
}

/// Why a namespace is left alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    SystemNamespace,
    ControlPlaneNamespace,
    Ambient,
    InjectionDisabled,
    Terminating,
    AlreadyOnTarget,
    NotOnFrom,
    NotMatchingSelector,
    NeverRelabelled,
    UnreadableRecord,
}

/// One namespace left alone, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub namespace: String,
    pub reason: SkipReason,
    /// The reason as a sentence.
    pub message: String,
    /// Named explicitly but excluded without `--force`: the run is refused.
    pub needs_force: bool,
}

/// The plan: the `-o json` document.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelabelPlan {
    pub api_version: String,
    pub kind: String,
    /// `relabel` or `undo`.
    pub operation: String,
    pub target: Option<Target>,
    pub from: Option<FromFilter>,
    pub changes: Vec<NamespaceChange>,
    pub skipped: Vec<Skipped>,
    /// Selected namespaces never relabelled, when there are too many to list
    /// (`-A --undo`).
    pub unrecorded: usize,
    /// The namespaces `--restart` continues with: the changed ones, and for
    /// a move those already on the target (a re-run finishes their restarts).
    pub restart_namespaces: Vec<String>,
    pub notes: Vec<String>,
}

impl RelabelPlan {
    /// Namespaces named explicitly but excluded because `--force` is missing.
    pub fn needing_force(&self) -> Vec<&Skipped> {
        self.skipped.iter().filter(|s| s.needs_force).collect()
    }

    /// Whether this undoes earlier relabels.
    pub fn is_undo(&self) -> bool {
        self.operation == "undo"
    }

    /// `snapshot` as it will be once the plan is written: every changed
    /// namespace carries its planned injection labels. `relabel --restart`
    /// plans its restarts on this, so the one plan shows what becomes stale.
    pub fn apply_to(&self, snapshot: &mut ClusterSnapshot) {
        for change in &self.changes {
            let Some(namespace) = snapshot
                .namespaces
                .iter_mut()
                .find(|n| n.name == change.namespace)
            else {
                continue;
            };
            for (key, value) in &change.after {
                match value {
                    Some(value) => {
                        namespace.labels.insert(key.clone(), value.clone());
                    }
                    None => {
                        namespace.labels.remove(key);
                    }
                }
            }
        }
    }

    /// The command that undoes this plan's changes once written.
    pub fn undo_command(&self) -> Option<String> {
        if self.changes.is_empty() || self.is_undo() {
            return None;
        }
        let names: Vec<&str> = self.changes.iter().map(|c| c.namespace.as_str()).collect();
        Some(format!(
            "kubectl mesh-upgrade relabel -n {} --undo",
            names.join(",")
        ))
    }
}

/// What one namespace comes to.
#[derive(Clone, Debug, PartialEq)]
pub enum Evaluation {
    Change(Box<NamespaceChange>),
    Skip(Skipped),
    /// Outside the selection (and not worth listing).
    NotSelected,
}

/// The request resolved against the control plane: plans the whole
/// selection, or re-evaluates one namespace after a conflict.
#[derive(Debug)]
pub struct Planner<'a> {
    control_plane: &'a ControlPlane,
    request: &'a RelabelRequest,
    target: Option<Target>,
    from: Option<FromFilter>,
    notes: Vec<String>,
}

/// Plan `request` over `namespaces`. Refuses (exit 5) a target that does not
/// exist, or whose istiod is not Ready without `--force`.
pub fn plan(
    namespaces: &[NamespaceState],
    control_plane: &ControlPlane,
    request: &RelabelRequest,
) -> Result<RelabelPlan, Error> {
    Ok(Planner::new(control_plane, request)?.plan(namespaces))
}

impl<'a> Planner<'a> {
    /// Resolve `--to` and `--from`.
    pub fn new(
        control_plane: &'a ControlPlane,
        request: &'a RelabelRequest,
    ) -> Result<Self, Error> {
        let mut notes = Vec::new();
        let target = match &request.operation {
            Operation::Move { to } => Some(resolve_target(
                control_plane,
                to,
                request.force,
                &mut notes,
            )?),
            Operation::Undo => None,
        };
        let from = request.from.as_ref().map(|name| {
            let revision = if name == DEFAULT_INJECTION {
                control_plane.default_revision()
            } else {
                control_plane.resolve(name).map(str::to_string)
            };
            if revision.is_none() {
                notes.push(format!(
                    "--from {name} names no revision or tag ({}); only namespaces labelled {REV_LABEL}={name} match",
                    known_targets(control_plane)
                ));
            }
            FromFilter {
                name: name.clone(),
                revision,
            }
        });
        Ok(Planner {
            control_plane,
            request,
            target,
            from,
            notes,
        })
    }

    /// The resolved target (`None` for undo).
    pub fn target(&self) -> Option<&Target> {
        self.target.as_ref()
    }

    /// The plan over every selected namespace.
    pub fn plan(&self, namespaces: &[NamespaceState]) -> RelabelPlan {
        let by_name: BTreeMap<&str, &NamespaceState> = namespaces
            .iter()
            .map(|n| (n.info.name.as_str(), n))
            .collect();
        // (namespace, named explicitly, listed when skipped)
        let selected: Vec<(&NamespaceState, bool, bool)> = match &self.request.namespaces {
            NamespaceSelection::Named(names) => names
                .iter()
                .filter_map(|n| by_name.get(n.as_str()))
                .map(|n| (*n, true, true))
                .collect(),
            NamespaceSelection::Context(name) => by_name
                .get(name.as_str())
                .map(|n| vec![(*n, false, true)])
                .unwrap_or_default(),
            NamespaceSelection::All => {
                // `-A` alone lists only what it would have touched; `-l` picks
                // few enough namespaces that each is accounted for.
                let list_all = self.request.selector.is_some();
                by_name.values().map(|n| (*n, false, list_all)).collect()
            }
        };

        let mut changes = Vec::new();
        let mut skipped = Vec::new();
        let mut unrecorded = 0;
        let mut restart_namespaces = Vec::new();
        for (namespace, explicit, listed) in selected {
            match self.evaluate(namespace, explicit) {
                Evaluation::Change(change) => {
                    restart_namespaces.push(change.namespace.clone());
                    changes.push(*change);
                }
                Evaluation::Skip(skip) => {
                    if skip.reason == SkipReason::AlreadyOnTarget {
                        restart_namespaces.push(skip.namespace.clone());
                    }
                    let quiet = matches!(
                        skip.reason,
                        SkipReason::NeverRelabelled | SkipReason::NotOnFrom
                    );
                    if listed || !quiet {
                        skipped.push(skip);
                    } else if skip.reason == SkipReason::NeverRelabelled {
                        unrecorded += 1;
                    }
                }
                Evaluation::NotSelected => {
                    if explicit && let Some(selector) = &self.request.selector {
                        skipped.push(Skipped {
                            namespace: namespace.info.name.clone(),
                            reason: SkipReason::NotMatchingSelector,
                            message: format!(
                                "named with -n but its labels do not match -l {selector}"
                            ),
                            needs_force: false,
                        });
                    }
                }
            }
        }

        RelabelPlan {
            api_version: API_VERSION.to_string(),
            kind: "RelabelPlan".to_string(),
            operation: match self.request.operation {
                Operation::Move { .. } => "relabel",
                Operation::Undo => "undo",
            }
            .to_string(),
            target: self.target.clone(),
            from: self.from.clone(),
            changes,
            skipped,
            unrecorded,
            restart_namespaces,
            notes: self.notes.clone(),
        }
    }

    /// What `namespace` comes to; `explicit` says it was named with `-n`.
    /// Used for the plan and again with a freshly read namespace after a 409.
    pub fn evaluate(&self, namespace: &NamespaceState, explicit: bool) -> Evaluation {
        if let Some(selector) = &self.request.selector
            && !selector.matches(&namespace.info.labels)
        {
            return Evaluation::NotSelected;
        }
        let name = namespace.info.name.clone();
        if namespace.info.terminating {
            return Evaluation::Skip(Skipped {
                namespace: name,
                reason: SkipReason::Terminating,
                message: "is being deleted".to_string(),
                needs_force: false,
            });
        }
        match &self.target {
            Some(target) => self.evaluate_move(namespace, explicit, target),
            None => self.evaluate_undo(namespace),
        }
    }

    fn evaluate_move(
        &self,
        namespace: &NamespaceState,
        explicit: bool,
        target: &Target,
    ) -> Evaluation {
        let info = &namespace.info;
        let name = info.name.clone();
        let revision_before = self.revision_of(info);

        if let Some(from) = &self.from {
            let labelled_from = info.labels.get(REV_LABEL) == Some(&from.name);
            let resolves_to_from =
                from.revision.is_some() && revision_before.as_deref() == from.revision.as_deref();
            if !labelled_from && !resolves_to_from {
                let now = match &revision_before {
                    Some(r) => format!("new pods get {r}"),
                    None => "new pods get no proxy".to_string(),
                };
                return Evaluation::Skip(Skipped {
                    namespace: name,
                    reason: SkipReason::NotOnFrom,
                    message: format!("not on --from {}: {now}", from.name),
                    needs_force: false,
                });
            }
        }

        let mut notes = Vec::new();
        if let Some((reason, why)) = self.exclusion(info) {
            if explicit && self.request.force {
                notes.push(format!(
                    "{why}; relabelled because it was named with --force"
                ));
            } else {
                let message = if explicit {
                    format!("{why}; pass --force to relabel it anyway")
                } else {
                    format!("{why}; name it with -n and --force to relabel it")
                };
                return Evaluation::Skip(Skipped {
                    namespace: name,
                    reason,
                    message,
                    needs_force: explicit,
                });
            }
        }

        let before = injection_labels(&info.labels);
        let after = target.labels.clone();
        if before == after {
            return Evaluation::Skip(Skipped {
                namespace: name,
                reason: SkipReason::AlreadyOnTarget,
                message: format!("already labelled {}", describe_labels(&after)),
                needs_force: false,
            });
        }

        let (record, record_value) = match &namespace.previous_labels {
            None => (RecordChange::Write, Some(record_text(&before))),
            Some(text) => match parse_record(text) {
                Ok(recorded) if labels_with(&before, &recorded) == after => {
                    notes.push(format!(
                        "back on the labels recorded before its first relabel: the record {PREVIOUS_LABELS_ANNOTATION} is removed"
                    ));
                    (RecordChange::Remove, None)
                }
                Ok(recorded) => {
                    notes.push(format!(
                        "already relabelled once: the record of its first labels ({}) is kept, and --undo restores those",
                        describe_labels(&recorded)
                    ));
                    (RecordChange::Keep, None)
                }
                Err(problem) => {
                    return Evaluation::Skip(Skipped {
                        namespace: name,
                        reason: SkipReason::UnreadableRecord,
                        message: format!(
                            "its annotation {PREVIOUS_LABELS_ANNOTATION} is unreadable ({problem}): fix or remove it, then run again"
                        ),
                        needs_force: false,
                    });
                }
            },
        };

        let revision_after = self.revision_of(&with_labels(info, &after));
        if before.values().all(Option::is_some) && target.kind != TargetKind::DefaultInjection {
            notes.push(format!(
                "both labels were set and {INJECTION_LABEL} won (IST0123); only {REV_LABEL} is left"
            ));
        }
        match (&revision_before, &revision_after) {
            (None, Some(after_rev)) => notes.push(format!(
                "new pods got no proxy here; from now on they get one from {after_rev}"
            )),
            (Some(b), Some(a)) if b == a => notes.push(format!(
                "new pods already get {a}; only the label changes, so running pods do not become stale"
            )),
            _ => {}
        }
        let reason = match &self.from {
            Some(from) => format!("on --from {}; moves to {}", from.name, target.name),
            None => format!("selected; moves to {}", target.name),
        };
        let write = namespace_write(
            &name,
            &namespace.resource_version,
            merge_patch(&before, &after, record, record_value.as_deref()),
            &reason,
        );
        Evaluation::Change(Box::new(NamespaceChange {
            namespace: name,
            before,
            after,
            revision_before,
            revision_after,
            record,
            write,
            reason,
            notes,
        }))
    }

    fn evaluate_undo(&self, namespace: &NamespaceState) -> Evaluation {
        let info = &namespace.info;
        let name = info.name.clone();
        let Some(text) = &namespace.previous_labels else {
            return Evaluation::Skip(Skipped {
                namespace: name,
                reason: SkipReason::NeverRelabelled,
                message: "never relabelled by mesh-upgrade: nothing to undo".to_string(),
                needs_force: false,
            });
        };
        let recorded = match parse_record(text) {
            Ok(recorded) => recorded,
            Err(problem) => {
                return Evaluation::Skip(Skipped {
                    namespace: name,
                    reason: SkipReason::UnreadableRecord,
                    message: format!(
                        "its annotation {PREVIOUS_LABELS_ANNOTATION} is unreadable ({problem}): restore the labels by hand"
                    ),
                    needs_force: false,
                });
            }
        };
        let before = injection_labels(&info.labels);
        let after = labels_with(&before, &recorded);
        let revision_before = self.revision_of(info);
        let revision_after = self.revision_of(&with_labels(info, &after));
        let mut notes = Vec::new();
        if before == after {
            notes.push(
                "its labels are already the recorded ones; only the record is removed".to_string(),
            );
        }
        let selects_something = after.values().any(Option::is_some);
        if revision_after.is_none() && selects_something {
            notes.push(format!(
                "the restored labels ({}) select no installed revision: new pods will start without a proxy",
                describe_labels(&after)
            ));
        }
        let reason = format!("restores {}", describe_labels(&after));
        let write = namespace_write(
            &name,
            &namespace.resource_version,
            merge_patch(&before, &after, RecordChange::Remove, None),
            &reason,
        );
        Evaluation::Change(Box::new(NamespaceChange {
            namespace: name,
            before,
            after: after.clone(),
            revision_before,
            revision_after,
            record: RecordChange::Remove,
            write,
            reason,
            notes,
        }))
    }

    /// Why a namespace is excluded unless named with `--force`.
    fn exclusion(&self, info: &NamespaceInfo) -> Option<(SkipReason, String)> {
        let name = info.name.as_str();
        if SYSTEM_NAMESPACES.contains(&name) {
            return Some((
                SkipReason::SystemNamespace,
                "a Kubernetes system namespace".to_string(),
            ));
        }
        if name == self.control_plane.namespace {
            return Some((
                SkipReason::ControlPlaneNamespace,
                "the control plane's own namespace".to_string(),
            ));
        }
        if info.labels.get(DATAPLANE_MODE_LABEL).map(String::as_str) == Some("ambient") {
            return Some((
                SkipReason::Ambient,
                format!(
                    "ambient mode ({DATAPLANE_MODE_LABEL}=ambient): no sidecars; ztunnel and waypoints carry its traffic"
                ),
            ));
        }
        match info.labels.get(INJECTION_LABEL).map(String::as_str) {
            Some("enabled") | None => None,
            Some(other) => Some((
                SkipReason::InjectionDisabled,
                format!("injection is turned off ({INJECTION_LABEL}={other})"),
            )),
        }
    }

    /// The revision a new pod without labels of its own gets in `info`.
    fn revision_of(&self, info: &NamespaceInfo) -> Option<String> {
        let outcome = expected_revision(info, &Labels::new(), &Labels::new(), self.control_plane);
        match outcome {
            InjectionOutcome::NotInjected { .. } => None,
            other => other.revision().map(str::to_string),
        }
    }
}

/// Resolve `--to`; refuse a missing target, and an unready one without `--force`.
fn resolve_target(
    control_plane: &ControlPlane,
    to: &str,
    force: bool,
    notes: &mut Vec<String>,
) -> Result<Target, Error> {
    let (kind, revision, label) = if to == DEFAULT_INJECTION {
        let Some(revision) = control_plane.default_revision() else {
            return Err(Error::Refused(format!(
                "--to {DEFAULT_INJECTION} needs a default revision, but no revision or `default` tag serves {INJECTION_LABEL}=enabled on this cluster ({})",
                known_targets(control_plane)
            )));
        };
        (TargetKind::DefaultInjection, Some(revision), None)
    } else if control_plane.revision(to).is_some() {
        (TargetKind::Revision, Some(to.to_string()), Some(to))
    } else if let Some(tag) = control_plane.tag(to) {
        if !tag.has_webhook() {
            return Err(Error::Refused(format!(
                "--to {to}: tag {to} exists only as a Service, and no injector webhook serves it, so pods created in a relabelled namespace would start without a proxy; `kubectl mesh-upgrade tag set {to} --revision {}` adds the webhook",
                tag.revision.as_deref().unwrap_or("<revision>")
            )));
        }
        (TargetKind::Tag, tag.revision.clone(), Some(to))
    } else {
        return Err(Error::Refused(format!(
            "--to {to}: no such revision or tag ({}; or {DEFAULT_INJECTION} for {INJECTION_LABEL}=enabled)",
            known_targets(control_plane)
        )));
    };
    let istiod = revision.as_deref().and_then(|r| control_plane.revision(r));
    let ready = istiod.is_some_and(|r| r.is_ready());
    if !ready {
        let why = match (&revision, istiod) {
            (None, _) => format!("tag {to} points at no running istiod"),
            (Some(r), None) => format!("revision {r} has no istiod in this cluster"),
            (Some(r), Some(i)) => format!(
                "istiod {} (revision {r}) has no Ready pod ({}/{} ready)",
                i.deployment, i.ready, i.desired
            ),
        };
        if !force {
            return Err(Error::Refused(format!(
                "--to {to}: {why}, so pods created in a relabelled namespace would fail to start; wait until it is Ready, or pass --force"
            )));
        }
        notes.push(format!(
            "--force: {why}; until it is Ready, pods created in these namespaces fail (the injector webhook fails closed)"
        ));
    }
    Ok(Target {
        name: to.to_string(),
        kind,
        version: istiod.and_then(|r| r.proxy_version.clone()),
        revision,
        ready,
        labels: target_labels(label),
    })
}

/// `revisions: 1-21-2 (1.21.2), 1-22-3 (1.22.3); tags: default -> 1-21-2`.
fn known_targets(control_plane: &ControlPlane) -> String {
    let revisions: Vec<String> = control_plane
        .revisions
        .iter()
        .map(|r| match &r.proxy_version {
            Some(v) => format!("{} ({v})", r.revision),
            None => r.revision.clone(),
        })
        .collect();
    let tags: Vec<String> = control_plane
        .tags
        .iter()
        .map(|t| match &t.revision {
            Some(r) => format!("{} -> {r}", t.name),
            None => format!("{} -> nothing", t.name),
        })
        .collect();
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    format!("revisions: {}; tags: {}", list(revisions), list(tags))
}

/// `labels` with the recorded values put back (unrecorded keys unchanged).
fn labels_with(labels: &InjectionLabels, recorded: &InjectionLabels) -> InjectionLabels {
    let mut out = labels.clone();
    for (key, value) in recorded {
        out.insert(key.clone(), value.clone());
    }
    out
}

/// `info` as it would be with `labels` as its injection labels.
fn with_labels(info: &NamespaceInfo, labels: &InjectionLabels) -> NamespaceInfo {
    let mut next = info.clone();
    for (key, value) in labels {
        match value {
            Some(v) => next.labels.insert(key.clone(), v.clone()),
            None => next.labels.remove(key),
        };
    }
    next
}

/// The record's text: the labels with explicit nulls, keys sorted.
fn record_text(labels: &InjectionLabels) -> String {
    // A map of strings and nulls always serialises.
    serde_json::to_string(labels).unwrap_or_default()
}

/// The write of one namespace: a merge patch on the version it was planned
/// on, so a concurrent edit makes the server answer 409 instead of being lost.
fn namespace_write(name: &str, resource_version: &str, patch: Value, reason: &str) -> Write {
    Write::patch(
        ObjectRef::cluster(ObjectKind::Namespace, name),
        Patch::Merge(patch),
        reason,
    )
    .at_version(resource_version)
}

/// The JSON merge patch from `before` to `after`: only the labels that
/// change and the record annotation as `record` says.
fn merge_patch(
    before: &InjectionLabels,
    after: &InjectionLabels,
    record: RecordChange,
    record_value: Option<&str>,
) -> Value {
    let mut metadata = Map::new();
    let labels: Map<String, Value> = after
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(*value))
        .map(|(key, value)| (key.clone(), json!(value)))
        .collect();
    if !labels.is_empty() {
        metadata.insert("labels".into(), Value::Object(labels));
    }
    match (record, record_value) {
        (RecordChange::Write, Some(text)) => {
            metadata.insert(
                "annotations".into(),
                json!({ PREVIOUS_LABELS_ANNOTATION: text }),
            );
        }
        (RecordChange::Remove, _) => {
            metadata.insert(
                "annotations".into(),
                json!({ PREVIOUS_LABELS_ANNOTATION: null }),
            );
        }
        _ => {}
    }
    json!({ "metadata": metadata })
}

/// How one planned change ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultState {
    /// Patched; the server answered with the planned labels.
    Relabelled,
    /// `--dry-run=server`: the server accepted the patch and stored nothing.
    Rehearsed,
    /// Re-read after a conflict: another writer's change made it unnecessary.
    Unchanged,
    /// The patch failed (the message says why).
    Failed,
    /// Not sent: Ctrl-C came first.
    NotSent,
}

/// How the change of one namespace ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceResult {
    pub namespace: String,
    pub state: ResultState,
    /// The injection labels the server answered with.
    pub labels: Option<InjectionLabels>,
    /// 409 answers, each followed by a re-read and a recomputed patch.
    pub conflicts: u32,
    pub message: Option<String>,
}

/// What a run did: the `-o json` document after the writes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelabelReport {
    pub api_version: String,
    pub kind: String,
    pub operation: String,
    /// `--dry-run=server`: nothing was stored.
    pub server_dry_run: bool,
    pub target: Option<Target>,
    pub results: Vec<NamespaceResult>,
    pub skipped: Vec<Skipped>,
    /// The namespaces whose workloads to restart next: the plan's, less
    /// those whose patch failed.
    pub restart_namespaces: Vec<String>,
}

impl RelabelReport {
    pub fn new(plan: &RelabelPlan, results: Vec<NamespaceResult>, server_dry_run: bool) -> Self {
        let failed: Vec<&str> = results
            .iter()
            .filter(|r| matches!(r.state, ResultState::Failed | ResultState::NotSent))
            .map(|r| r.namespace.as_str())
            .collect();
        RelabelReport {
            api_version: API_VERSION.to_string(),
            kind: "RelabelReport".to_string(),
            operation: plan.operation.clone(),
            server_dry_run,
            target: plan.target.clone(),
            restart_namespaces: plan
                .restart_namespaces
                .iter()
                .filter(|n| !failed.contains(&n.as_str()))
                .cloned()
                .collect(),
            results,
            skipped: plan.skipped.clone(),
        }
    }

    /// The changes that failed.
    pub fn failures(&self) -> Vec<&NamespaceResult> {
        self.results
            .iter()
            .filter(|r| r.state == ResultState::Failed)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::{ClusterFixture, namespace};

    /// The canary scenario's control plane: 1-21-2 (default through the
    /// `default` tag, also `prod-stable`) and 1-22-3 (`prod-canary`).
    fn canary() -> ControlPlane {
        ControlPlane::from_snapshot(
            &ClusterFixture::new()
                .revision("1-21-2", "1.21.2")
                .revision("1-22-3", "1.22.3")
                .tag("default", "1-21-2")
                .tag("prod-stable", "1-21-2")
                .tag("prod-canary", "1-22-3")
                .build(),
        )
    }

    fn ns(name: &str, labels: &[(&str, &str)]) -> NamespaceState {
        NamespaceState {
            info: namespace(name, labels),
            resource_version: format!("rv-{name}"),
            previous_labels: None,
        }
    }

    fn recorded(mut state: NamespaceState, record: &str) -> NamespaceState {
        state.previous_labels = Some(record.to_string());
        state
    }

    fn cluster() -> Vec<NamespaceState> {
        vec![
            ns("istio-system", &[]),
            ns("kube-system", &[]),
            ns("kube-public", &[]),
            ns("kube-node-lease", &[]),
            ns("default", &[]),
            ns("shop", &[("istio-injection", "enabled")]),
            ns("cart", &[("istio.io/rev", "prod-stable")]),
            ns("search", &[("istio.io/rev", "1-22-3")]),
            ns(
                "legacy",
                &[("istio-injection", "enabled"), ("istio.io/rev", "1-22-3")],
            ),
            ns("batch", &[("istio.io/rev", "prod-canary")]),
            ns("ambient-apps", &[("istio.io/dataplane-mode", "ambient")]),
            ns("off", &[("istio-injection", "disabled")]),
            ns("no-mesh", &[("team", "web")]),
        ]
    }

    fn move_to(to: &str, namespaces: NamespaceSelection) -> RelabelRequest {
        RelabelRequest {
            operation: Operation::Move { to: to.into() },
            namespaces,
            selector: None,
            from: None,
            force: false,
        }
    }

    fn named(names: &[&str]) -> NamespaceSelection {
        NamespaceSelection::Named(names.iter().map(|n| n.to_string()).collect())
    }

    fn undo(namespaces: NamespaceSelection) -> RelabelRequest {
        RelabelRequest {
            operation: Operation::Undo,
            namespaces,
            selector: None,
            from: None,
            force: false,
        }
    }

    fn changed(plan: &RelabelPlan) -> Vec<&str> {
        plan.changes.iter().map(|c| c.namespace.as_str()).collect()
    }

    fn skipped(plan: &RelabelPlan) -> Vec<(&str, SkipReason)> {
        plan.skipped
            .iter()
            .map(|s| (s.namespace.as_str(), s.reason.clone()))
            .collect()
    }

    #[test]
    fn moving_an_injection_enabled_namespace_removes_the_legacy_label_and_records_it() {
        let cp = canary();
        let plan = super::plan(&cluster(), &cp, &move_to("1-22-3", named(&["shop"]))).unwrap();
        assert_eq!(plan.changes.len(), 1);
        let change = &plan.changes[0];
        assert_eq!(
            change.write.body_to_send(),
            json!({"metadata": {
                "resourceVersion": "rv-shop",
                "labels": {"istio-injection": null, "istio.io/rev": "1-22-3"},
                "annotations": {
                    "mesh-upgrade.io/previous-injection-labels":
                        "{\"istio-injection\":\"enabled\",\"istio.io/rev\":null}"
                }
            }})
        );
        assert_eq!(change.revision_before.as_deref(), Some("1-21-2"));
        assert_eq!(change.revision_after.as_deref(), Some("1-22-3"));
        assert_eq!(change.record, RecordChange::Write);
        assert_eq!(plan.restart_namespaces, ["shop"]);
    }

    #[test]
    fn a_namespace_with_both_labels_ends_with_only_istio_io_rev() {
        let cp = canary();
        let plan = super::plan(&cluster(), &cp, &move_to("1-22-3", named(&["legacy"]))).unwrap();
        let change = &plan.changes[0];
        assert_eq!(
            change.write.body_to_send()["metadata"]["labels"],
            json!({"istio-injection": null}),
            "istio.io/rev is already 1-22-3 and is not rewritten"
        );
        assert_eq!(
            change.after,
            InjectionLabels::from([
                ("istio-injection".into(), None),
                ("istio.io/rev".into(), Some("1-22-3".into()))
            ])
        );
        assert_eq!(change.revision_before.as_deref(), Some("1-21-2"));
        assert!(change.notes.iter().any(|n| n.contains("IST0123")));
    }

    #[test]
    fn default_injection_sets_istio_injection_and_removes_istio_io_rev() {
        let cp = canary();
        let plan = plan(
            &cluster(),
            &cp,
            &move_to(DEFAULT_INJECTION, named(&["search"])),
        )
        .unwrap();
        let target = plan.target.as_ref().unwrap();
        assert_eq!(target.kind, TargetKind::DefaultInjection);
        assert_eq!(target.revision.as_deref(), Some("1-21-2"));
        assert_eq!(
            plan.changes[0].write.body_to_send(),
            json!({"metadata": {
                "resourceVersion": "rv-search",
                "labels": {"istio-injection": "enabled", "istio.io/rev": null},
                "annotations": {
                    "mesh-upgrade.io/previous-injection-labels":
                        "{\"istio-injection\":null,\"istio.io/rev\":\"1-22-3\"}"
                }
            }})
        );
    }

    #[test]
    fn a_tag_target_labels_the_tag_and_resolves_to_its_revision() {
        let cp = canary();
        let plan = super::plan(&cluster(), &cp, &move_to("prod-canary", named(&["cart"]))).unwrap();
        let target = plan.target.as_ref().unwrap();
        assert_eq!(target.kind, TargetKind::Tag);
        assert_eq!(target.revision.as_deref(), Some("1-22-3"));
        assert_eq!(target.version.as_deref(), Some("1.22.3"));
        assert_eq!(
            plan.changes[0].write.body_to_send()["metadata"]["labels"],
            json!({"istio.io/rev": "prod-canary"})
        );
    }

    #[test]
    fn a_missing_target_is_refused_with_what_exists() {
        let cp = canary();
        let err = super::plan(&cluster(), &cp, &move_to("1-23-0", named(&["shop"]))).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::Refused);
        assert_eq!(
            err.to_string(),
            "--to 1-23-0: no such revision or tag (revisions: 1-21-2 (1.21.2), 1-22-3 (1.22.3); \
             tags: default -> 1-21-2, prod-canary -> 1-22-3, prod-stable -> 1-21-2; \
             or default-injection for istio-injection=enabled)"
        );
    }

    #[test]
    fn a_tag_without_an_injector_webhook_is_refused_as_a_target() {
        let cp = ControlPlane::from_snapshot(
            &ClusterFixture::new()
                .revision("1-22-3", "1.22.3")
                .tag_service("prod-next", "1-22-3")
                .build(),
        );
        let err =
            super::plan(&cluster(), &cp, &move_to("prod-next", named(&["shop"]))).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::Refused);
        assert!(
            err.to_string().starts_with(
                "--to prod-next: tag prod-next exists only as a Service, and no injector webhook serves it"
            ),
            "{err}"
        );
    }

    #[test]
    fn an_unready_target_is_refused_unless_forced() {
        let cp = ControlPlane::from_snapshot(
            &ClusterFixture::new()
                .revision("1-21-2", "1.21.2")
                .revision("1-22-3", "1.22.3")
                .tag("prod-canary", "1-22-3")
                .unready("1-22-3")
                .build(),
        );
        for to in ["1-22-3", "prod-canary"] {
            let err = super::plan(&cluster(), &cp, &move_to(to, named(&["shop"]))).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::ExitCode::Refused);
            assert!(err.to_string().contains("no Ready pod"), "{err}");
            assert!(err.to_string().contains("--force"), "{err}");
        }
        let mut forced = move_to("1-22-3", named(&["shop"]));
        forced.force = true;
        let plan = super::plan(&cluster(), &cp, &forced).unwrap();
        assert_eq!(changed(&plan), ["shop"]);
        assert!(!plan.target.as_ref().unwrap().ready);
        assert!(plan.notes[0].starts_with("--force: istiod istiod-1-22-3"));
    }

    #[test]
    fn default_injection_without_a_default_revision_is_refused() {
        let cp = ControlPlane::from_snapshot(
            &ClusterFixture::new().revision("1-22-3", "1.22.3").build(),
        );
        let err = plan(
            &cluster(),
            &cp,
            &move_to(DEFAULT_INJECTION, named(&["search"])),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("needs a default revision"),
            "{err}"
        );
    }

    #[test]
    fn from_selects_every_namespace_resolving_to_the_revision_including_injection_enabled() {
        let cp = canary();
        let mut request = move_to("1-22-3", NamespaceSelection::All);
        request.from = Some("1-21-2".into());
        let plan = super::plan(&cluster(), &cp, &request).unwrap();
        assert_eq!(changed(&plan), ["cart", "legacy", "shop"]);
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
        assert_eq!(
            plan.from.as_ref().unwrap().revision.as_deref(),
            Some("1-21-2")
        );
    }

    #[test]
    fn from_a_tag_means_the_revision_behind_it() {
        let cp = canary();
        let mut request = move_to("1-22-3", NamespaceSelection::All);
        request.from = Some("prod-stable".into());
        let plan = super::plan(&cluster(), &cp, &request).unwrap();
        assert_eq!(changed(&plan), ["cart", "legacy", "shop"]);
    }

    #[test]
    fn from_filters_named_namespaces_and_says_why() {
        let cp = canary();
        let mut request = move_to("1-22-3", named(&["shop", "search"]));
        request.from = Some("1-21-2".into());
        let plan = super::plan(&cluster(), &cp, &request).unwrap();
        assert_eq!(changed(&plan), ["shop"]);
        assert_eq!(skipped(&plan), [("search", SkipReason::NotOnFrom)]);
        assert_eq!(
            plan.skipped[0].message,
            "not on --from 1-21-2: new pods get 1-22-3"
        );
        assert_eq!(plan.restart_namespaces, ["shop"]);
    }

    #[test]
    fn a_label_selector_picks_namespaces_and_accounts_for_each() {
        let cp = canary();
        let mut request = move_to("1-22-3", NamespaceSelection::All);
        request.selector = Some(LabelSelector::parse("istio-injection").unwrap());
        let plan = super::plan(&cluster(), &cp, &request).unwrap();
        assert_eq!(changed(&plan), ["legacy", "shop"]);
        assert_eq!(skipped(&plan), [("off", SkipReason::InjectionDisabled)]);
        assert!(!plan.skipped[0].needs_force);
    }

    #[test]
    fn a_named_namespace_the_selector_does_not_match_is_listed() {
        let cp = canary();
        let mut request = move_to("1-22-3", named(&["shop", "cart"]));
        request.selector = Some(LabelSelector::parse("istio-injection=enabled").unwrap());
        let plan = super::plan(&cluster(), &cp, &request).unwrap();
        assert_eq!(changed(&plan), ["shop"]);
        assert_eq!(skipped(&plan), [("cart", SkipReason::NotMatchingSelector)]);
    }

    #[test]
    fn excluded_namespaces_need_an_explicit_name_and_force() {
        let cp = canary();
        let names = ["kube-system", "istio-system", "ambient-apps", "off"];
        let plan = super::plan(&cluster(), &cp, &move_to("1-22-3", named(&names))).unwrap();
        assert!(plan.changes.is_empty());
        assert_eq!(
            skipped(&plan),
            [
                ("kube-system", SkipReason::SystemNamespace),
                ("istio-system", SkipReason::ControlPlaneNamespace),
                ("ambient-apps", SkipReason::Ambient),
                ("off", SkipReason::InjectionDisabled),
            ]
        );
        assert_eq!(plan.needing_force().len(), 4);
        assert!(
            plan.skipped[0]
                .message
                .ends_with("pass --force to relabel it anyway")
        );

        let mut forced = move_to("1-22-3", named(&names));
        forced.force = true;
        let plan = super::plan(&cluster(), &cp, &forced).unwrap();
        assert_eq!(changed(&plan), names);
        assert!(plan.changes[0].notes[0].contains("named with --force"));
    }

    #[test]
    fn force_does_not_reach_excluded_namespaces_that_were_not_named() {
        let cp = canary();
        let mut request = move_to("1-22-3", NamespaceSelection::All);
        request.selector = Some(LabelSelector::parse("!team").unwrap());
        request.force = true;
        let plan = super::plan(&cluster(), &cp, &request).unwrap();
        let excluded: Vec<&str> = plan
            .skipped
            .iter()
            .filter(|s| s.reason != SkipReason::AlreadyOnTarget)
            .map(|s| s.namespace.as_str())
            .collect();
        assert_eq!(
            excluded,
            [
                "ambient-apps",
                "istio-system",
                "kube-node-lease",
                "kube-public",
                "kube-system",
                "off"
            ]
        );
        assert!(plan.skipped.iter().all(|s| !s.needs_force));
        assert!(
            plan.skipped
                .iter()
                .find(|s| s.namespace == "kube-system")
                .unwrap()
                .message
                .ends_with("name it with -n and --force to relabel it")
        );
    }

    #[test]
    fn a_namespace_already_on_the_target_is_a_no_op_but_still_restarted() {
        let cp = canary();
        let plan = super::plan(&cluster(), &cp, &move_to("1-22-3", named(&["search"]))).unwrap();
        assert!(plan.changes.is_empty());
        assert_eq!(skipped(&plan), [("search", SkipReason::AlreadyOnTarget)]);
        assert_eq!(plan.restart_namespaces, ["search"]);
    }

    #[test]
    fn a_second_relabel_keeps_the_first_record() {
        let cp = canary();
        let shop = recorded(
            ns("shop", &[("istio.io/rev", "1-22-3")]),
            r#"{"istio-injection":"enabled","istio.io/rev":null}"#,
        );
        let plan = super::plan(&[shop], &cp, &move_to("prod-canary", named(&["shop"]))).unwrap();
        let change = &plan.changes[0];
        assert_eq!(change.record, RecordChange::Keep);
        assert_eq!(
            change.write.body_to_send(),
            json!({"metadata": {
                "resourceVersion": "rv-shop",
                "labels": {"istio.io/rev": "prod-canary"}
            }})
        );
    }

    #[test]
    fn relabelling_back_onto_the_recorded_labels_removes_the_record() {
        let cp = canary();
        let shop = recorded(
            ns("shop", &[("istio.io/rev", "1-22-3")]),
            r#"{"istio-injection":"enabled","istio.io/rev":null}"#,
        );
        let plan =
            super::plan(&[shop], &cp, &move_to(DEFAULT_INJECTION, named(&["shop"]))).unwrap();
        assert_eq!(plan.changes[0].record, RecordChange::Remove);
        assert_eq!(
            plan.changes[0].write.body_to_send(),
            json!({"metadata": {
                "resourceVersion": "rv-shop",
                "labels": {"istio-injection": "enabled", "istio.io/rev": null},
                "annotations": {"mesh-upgrade.io/previous-injection-labels": null}
            }})
        );
    }

    #[test]
    fn undo_restores_exactly_the_recorded_labels_and_removes_the_record() {
        let cp = canary();
        let shop = recorded(
            ns("shop", &[("istio.io/rev", "1-22-3"), ("team", "web")]),
            r#"{"istio-injection":"enabled","istio.io/rev":null}"#,
        );
        let plan = super::plan(&[shop], &cp, &undo(named(&["shop"]))).unwrap();
        assert_eq!(
            plan.changes[0].write.body_to_send(),
            json!({"metadata": {
                "resourceVersion": "rv-shop",
                "labels": {"istio-injection": "enabled", "istio.io/rev": null},
                "annotations": {"mesh-upgrade.io/previous-injection-labels": null}
            }})
        );
        assert_eq!(plan.changes[0].revision_after.as_deref(), Some("1-21-2"));
        assert_eq!(plan.restart_namespaces, ["shop"]);
    }

    #[test]
    fn undo_of_a_namespace_that_had_no_label_removes_the_one_set() {
        let cp = canary();
        let plain = recorded(
            ns("no-mesh", &[("istio.io/rev", "1-22-3")]),
            r#"{"istio-injection":null,"istio.io/rev":null}"#,
        );
        let plan = super::plan(&[plain], &cp, &undo(named(&["no-mesh"]))).unwrap();
        assert_eq!(
            plan.changes[0].write.body_to_send()["metadata"]["labels"],
            json!({"istio.io/rev": null})
        );
        assert_eq!(plan.changes[0].revision_after, None);
        assert!(
            plan.changes[0].notes.is_empty(),
            "{:?}",
            plan.changes[0].notes
        );
    }

    #[test]
    fn undo_of_a_namespace_never_relabelled_is_a_listed_no_op() {
        let cp = canary();
        let plan = super::plan(&cluster(), &cp, &undo(named(&["shop"]))).unwrap();
        assert!(plan.changes.is_empty());
        assert_eq!(skipped(&plan), [("shop", SkipReason::NeverRelabelled)]);
        assert!(plan.restart_namespaces.is_empty());

        let plan = super::plan(&cluster(), &cp, &undo(NamespaceSelection::All)).unwrap();
        assert!(plan.skipped.is_empty());
        assert_eq!(plan.unrecorded, cluster().len());
    }

    #[test]
    fn undo_reaches_namespaces_relabelled_with_force_without_force_again() {
        let cp = canary();
        let kube_system = recorded(
            ns("kube-system", &[("istio.io/rev", "1-22-3")]),
            r#"{"istio-injection":null,"istio.io/rev":null}"#,
        );
        let plan = super::plan(&[kube_system], &cp, &undo(NamespaceSelection::All)).unwrap();
        assert_eq!(changed(&plan), ["kube-system"]);
    }

    #[test]
    fn an_unreadable_record_is_left_alone_with_a_reason() {
        let cp = canary();
        let shop = recorded(ns("shop", &[("istio.io/rev", "1-22-3")]), "enabled");
        let plan = super::plan(std::slice::from_ref(&shop), &cp, &undo(named(&["shop"]))).unwrap();
        assert_eq!(skipped(&plan), [("shop", SkipReason::UnreadableRecord)]);
        let plan = super::plan(&[shop], &cp, &move_to("1-21-2", named(&["shop"]))).unwrap();
        assert_eq!(skipped(&plan), [("shop", SkipReason::UnreadableRecord)]);
    }

    #[test]
    fn a_terminating_namespace_is_skipped() {
        let cp = canary();
        let mut shop = ns("shop", &[("istio-injection", "enabled")]);
        shop.info.terminating = true;
        let plan = super::plan(&[shop], &cp, &move_to("1-22-3", named(&["shop"]))).unwrap();
        assert_eq!(skipped(&plan), [("shop", SkipReason::Terminating)]);
    }

    #[test]
    fn re_evaluating_a_namespace_changed_meanwhile_builds_a_patch_on_the_new_version() {
        let cp = canary();
        let request = move_to("1-22-3", named(&["shop"]));
        let planner = Planner::new(&cp, &request).unwrap();
        let mut fresh = ns("shop", &[("istio-injection", "enabled"), ("team", "blue")]);
        fresh.resource_version = "rv-2".into();
        let Evaluation::Change(change) = planner.evaluate(&fresh, true) else {
            panic!("still a change");
        };
        assert_eq!(
            change.write.body_to_send()["metadata"]["resourceVersion"],
            "rv-2"
        );
        // Someone else moved it already: nothing left to do.
        let moved = ns("shop", &[("istio.io/rev", "1-22-3")]);
        assert!(matches!(
            planner.evaluate(&moved, true),
            Evaluation::Skip(Skipped {
                reason: SkipReason::AlreadyOnTarget,
                ..
            })
        ));
    }

    #[test]
    fn the_namespace_state_reads_the_record_and_resource_version() {
        let object: Namespace = serde_json::from_value(json!({
            "metadata": {
                "name": "shop",
                "resourceVersion": "17",
                "labels": {"istio-injection": "enabled"},
                "annotations": {PREVIOUS_LABELS_ANNOTATION: "{}"}
            }
        }))
        .unwrap();
        let state = NamespaceState::from(&object);
        assert_eq!(state.resource_version, "17");
        assert_eq!(state.previous_labels.as_deref(), Some("{}"));
        assert_eq!(
            injection_labels(&state.info.labels),
            InjectionLabels::from([
                ("istio-injection".into(), Some("enabled".into())),
                ("istio.io/rev".into(), None)
            ])
        );
    }

    #[test]
    fn the_snapshot_keeps_the_record_so_the_state_can_be_read_from_it() {
        // The snapshot keeps only annotations under its record prefix.
        assert!(PREVIOUS_LABELS_ANNOTATION.starts_with(crate::snapshot::RECORD_ANNOTATION_PREFIX));
        let object: Namespace = serde_json::from_value(json!({
            "metadata": {
                "name": "shop",
                "resourceVersion": "17",
                "annotations": {PREVIOUS_LABELS_ANNOTATION: "{}", "owner": "payments"}
            }
        }))
        .unwrap();
        let info = NamespaceInfo::from(&object);
        assert_eq!(
            info.records.keys().collect::<Vec<_>>(),
            [PREVIOUS_LABELS_ANNOTATION]
        );
        let state = NamespaceState::from(&info);
        assert_eq!(state, NamespaceState::from(&object));
        assert_eq!(state.resource_version, "17");
        assert_eq!(state.previous_labels.as_deref(), Some("{}"));
    }

    #[test]
    fn the_plan_document_names_its_kind_and_uses_camel_case() {
        let cp = canary();
        let plan = super::plan(&cluster(), &cp, &move_to("1-22-3", named(&["shop"]))).unwrap();
        let doc = serde_json::to_value(&plan).unwrap();
        assert_eq!(doc["apiVersion"], "mesh-upgrade/v1");
        assert_eq!(doc["kind"], "RelabelPlan");
        assert_eq!(doc["target"]["kind"], "revision");
        assert_eq!(doc["changes"][0]["revisionBefore"], "1-21-2");
        assert_eq!(doc["changes"][0]["record"], "write");
        assert_eq!(doc["restartNamespaces"], json!(["shop"]));
    }

    #[test]
    fn the_plan_applied_to_a_snapshot_gives_each_changed_namespace_its_planned_labels() {
        let cp = canary();
        let plan = super::plan(&cluster(), &cp, &move_to("1-22-3", named(&["shop"]))).unwrap();
        let mut snapshot = ClusterSnapshot::new("istio-system", crate::snapshot::Scope::All);
        snapshot.namespaces = vec![
            namespace("shop", &[("istio-injection", "enabled"), ("team", "a")]),
            namespace("pay", &[("istio-injection", "enabled")]),
        ];
        plan.apply_to(&mut snapshot);
        let shop = &snapshot.namespaces[0].labels;
        assert_eq!(shop.get("istio.io/rev").map(String::as_str), Some("1-22-3"));
        assert_eq!(shop.get("istio-injection"), None);
        assert_eq!(shop.get("team").map(String::as_str), Some("a"));
        assert_eq!(
            snapshot.namespaces[1]
                .labels
                .get("istio-injection")
                .map(String::as_str),
            Some("enabled")
        );
        assert_eq!(
            plan.undo_command().as_deref(),
            Some("kubectl mesh-upgrade relabel -n shop --undo")
        );
    }
}
