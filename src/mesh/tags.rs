//! Revision tags: what `tag list` shows, and the plans of `tag set`,
//! `tag set --undo` and `tag remove`, with the exact writes each sends.
//!
//! ```text
//! snapshot (every namespace) ─► ControlPlane ─► TagList (tag, revision, webhook/Service, users)
//!
//! request (set <tag> --revision <rev> | --undo | remove) ─► plan ─► TagPlan
//!    │ writes: the tag's webhook configuration and Service, created or moved (objects.rs),
//!    │         `default`: the default revision's own webhooks made never to match
//!    │ effects on the snapshot ─► after-snapshot ─► classify before/after:
//!    │         namespaces whose new pods change revision, workloads that become
//!    │         stale (and gateways among them), pods no restart reaches
//!    └ undo: the command that moves it back
//! ```
//!
//! A tag is the webhook configuration `istio-revision-tag-<tag>` and, from
//! Istio 1.28, the Service `istiod-revision-tag-<tag>`; both are written as
//! `istioctl tag set` of the target revision's version writes them
//! ([`objects`]). A move patches each object on the resourceVersion it was
//! planned on (a JSON merge patch that leaves it exactly as generated), a
//! missing one is created.
//!
//! The way back is recorded on each object the move writes, in the
//! annotation [`PREVIOUS_REVISION_ANNOTATION`]: `{"revision":"1-21-2"}`, the
//! revision that object named before, or `{"revision":null}` when the move
//! created it (undo deletes it). Only the last move is recorded: undo goes
//! one step back and removes the record. Moving the `default` tag makes the
//! default revision's own webhooks never match, as istioctl does
//! (`DeactivateIstioInjectionWebhook`, `istioctl/pkg/tag/util.go`); their
//! selectors before that are recorded in [`DEACTIVATED_WEBHOOKS_ANNOTATION`]
//! on that configuration, and undo puts them back.
//!
//! Pure: the snapshot in, the plan out; the caller sends the writes
//! (`run::tag`) and asks [`landed`] after a conflict.

pub mod objects;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::mesh::API_VERSION;
use crate::mesh::control_plane::{ControlPlane, REV_LABEL, TAG_LABEL};
use crate::mesh::injection::{INJECTION_LABEL, InjectionOutcome, expected_revision};
use crate::mesh::workloads::{Classification, ProxyGroup, WorkloadKind, WorkloadState, classify};
use crate::snapshot::{
    ClusterSnapshot, LabelMatcher, Labels, NamespaceInfo, ServiceInfo, WebhookConfigurationInfo,
};
use crate::write::{ObjectKind, ObjectRef, Patch, Precondition, Write};

pub use objects::{
    Canonical, ChartLayout, never_match, tag_service, tag_service_name, tag_webhook_configuration,
    tag_webhook_name,
};

/// The record of what a tag object named before the last move.
pub const PREVIOUS_REVISION_ANNOTATION: &str = "mesh-upgrade.io/previous-revision";
/// On the default revision's own webhook configuration: its webhooks'
/// selectors before `tag set default` made them never match.
pub const DEACTIVATED_WEBHOOKS_ANNOTATION: &str = "mesh-upgrade.io/deactivated-webhooks";
/// The tag that serves `istio-injection=enabled` namespaces.
pub const DEFAULT_TAG: &str = "default";

/// What `tag` is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagOperation {
    /// `tag set <tag> --revision <revision>`: create or move.
    Set { revision: String },
    /// `tag set --undo <tag>`: back to the recorded revision.
    Undo,
    /// `tag remove <tag>`.
    Remove,
}

/// The request, from the flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRequest {
    pub tag: String,
    pub operation: TagOperation,
    /// Proceed although the target istiod is not Ready, or remove a tag
    /// namespaces still use.
    pub force: bool,
}

/// A namespace whose new pods change revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceMove {
    pub namespace: String,
    /// The label that makes it use the tag (`istio.io/rev=prod-stable`,
    /// `istio-injection=enabled`).
    pub via: String,
    /// The revision a new pod gets now, and after the change (`null`: none).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A workload whose new pods get another revision after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedWorkload {
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
    /// An Istio gateway Deployment.
    pub gateway: bool,
    /// What its pods run now.
    pub running: Vec<ProxyGroup>,
    pub before: Option<String>,
    pub after: Option<String>,
    /// The proxy version new pods get after the change.
    pub after_version: Option<String>,
    /// Its running pods then run another proxy than a new pod gets: a
    /// restart is needed (`--restart` does it).
    pub becomes_stale: bool,
}

/// A Gateway API gateway or waypoint whose serving revision the move
/// changes: istiod of the new revision re-renders its Deployment and it rolls,
/// with no restart (`pkg/revisions/tag_watcher.go`: a Gateway labelled with
/// the tag, or in a namespace so labelled, follows it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedGatewayApi {
    pub namespace: String,
    pub name: String,
    pub class: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A pod no restart reaches whose kind of pod changes revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedPod {
    pub namespace: String,
    pub name: String,
    pub reason: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// What a person would run, after checking it is safe.
    pub command: String,
}

/// What a write does to the snapshot: how the plan computes the cluster
/// as it will be.
#[derive(Clone, Debug, PartialEq)]
enum Effect {
    WebhookConfiguration {
        name: String,
        after: Option<WebhookConfigurationInfo>,
    },
    Service {
        namespace: String,
        name: String,
        after: Option<ServiceInfo>,
    },
}

/// The plan of `tag set`, `tag set --undo` or `tag remove`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagPlan {
    pub api_version: &'static str,
    /// `TagPlan`.
    pub kind: &'static str,
    /// `set`, `undo` or `remove`.
    pub operation: &'static str,
    pub tag: String,
    /// The revision the tag points at now (`null`: the tag does not exist).
    pub from_revision: Option<String>,
    /// The revision it points at after (`null`: removed).
    pub to_revision: Option<String>,
    /// The Istio version of the target revision, whose `istioctl tag set`
    /// the objects are written as (`null`: unknown, or a removal).
    pub istio_version: Option<String>,
    /// Every request, in the order sent: `{target, change, precondition, reason}`.
    pub writes: Vec<Write>,
    /// Namespaces whose new pods change revision.
    pub namespaces: Vec<NamespaceMove>,
    /// Workloads whose new pods change revision (gateways among them).
    pub workloads: Vec<AffectedWorkload>,
    /// Pods no restart reaches whose proxy becomes stale.
    pub unreachable: Vec<AffectedPod>,
    /// Gateway API gateways and waypoints istiod re-renders on the new
    /// revision (no restart: they roll by themselves).
    pub gateway_api: Vec<AffectedGatewayApi>,
    /// Sentences the reader should know (a Service not written for an old
    /// version, `--force`, a configuration left alone).
    pub notes: Vec<String>,
    /// The command that undoes the change, once written.
    pub undo: Option<String>,
    #[serde(skip)]
    effects: Vec<Effect>,
}

impl TagPlan {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Applies the planned writes to `snapshot`: the cluster as it will be.
    pub fn apply_to(&self, snapshot: &mut ClusterSnapshot) {
        for effect in &self.effects {
            match effect {
                Effect::WebhookConfiguration { name, after } => {
                    snapshot.webhook_configurations.retain(|c| &c.name != name);
                    if let Some(after) = after {
                        snapshot.webhook_configurations.push(after.clone());
                    }
                }
                Effect::Service {
                    namespace,
                    name,
                    after,
                } => {
                    snapshot
                        .services
                        .retain(|s| !(&s.namespace == namespace && &s.name == name));
                    if let Some(after) = after {
                        snapshot.services.push(after.clone());
                    }
                }
            }
        }
    }

    /// The workloads that become stale: what `--restart` restarts.
    pub fn becoming_stale(&self) -> Vec<&AffectedWorkload> {
        self.workloads.iter().filter(|w| w.becomes_stale).collect()
    }
}

/// A tag name must make a valid webhook configuration name and label
/// value: lowercase letters, digits, `-` and `.`, starting and ending with
/// a letter or digit, at most 63 characters.
pub fn check_tag_name(tag: &str) -> Result<(), Error> {
    let valid = !tag.is_empty()
        && tag.len() <= 63
        && tag
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric())
        && tag.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{tag:?} is not a tag name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 63"
        )))
    }
}

/// The record annotation's value for `revision` (`None`: created by the move).
pub fn record_value(revision: Option<&str>) -> String {
    json!({ "revision": revision }).to_string()
}

/// A record's revision: `Some(None)` for "created by the move", `None`
/// when there is no record (or it cannot be read).
pub fn parse_record(text: &str) -> Option<Option<String>> {
    let value: Value = serde_json::from_str(text).ok()?;
    match value.get("revision")? {
        Value::Null => Some(None),
        Value::String(r) if !r.is_empty() => Some(Some(r.clone())),
        _ => None,
    }
}

/// `revisions: 1-21-2 (1.21.2), 1-22-3 (1.22.3)`.
fn known_revisions(control_plane: &ControlPlane) -> String {
    let names: Vec<String> = control_plane
        .revisions
        .iter()
        .map(|r| match &r.istiod_version {
            Some(v) => format!("{} ({v})", r.revision),
            None => r.revision.clone(),
        })
        .collect();
    if names.is_empty() {
        "no istiod runs in this cluster".to_string()
    } else {
        format!("revisions: {}", names.join(", "))
    }
}

fn known_tags(control_plane: &ControlPlane) -> String {
    if control_plane.tags.is_empty() {
        return "there are no tags".to_string();
    }
    let tags: Vec<String> = control_plane
        .tags
        .iter()
        .map(|t| format!("{} -> {}", t.name, t.revision.as_deref().unwrap_or("?")))
        .collect();
    format!("tags: {}", tags.join(", "))
}

/// What the plan of one object needs to know about the records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recording {
    /// A move: record what the object named before.
    Record,
    /// An undo: remove the record.
    Clear,
}

/// The writes that make `tag` point at `revision`, and their effects.
struct TagWrites {
    writes: Vec<Write>,
    effects: Vec<Effect>,
    notes: Vec<String>,
}

fn webhook_info(object: &Value) -> Option<WebhookConfigurationInfo> {
    serde_json::from_value::<MutatingWebhookConfiguration>(object.clone())
        .ok()
        .map(|m| WebhookConfigurationInfo::from(&m))
}

fn service_info(object: &Value) -> Option<ServiceInfo> {
    serde_json::from_value::<Service>(object.clone())
        .ok()
        .map(|s| ServiceInfo::from(&s))
}

/// `{k: v, gone: null}`: the map that a merge patch turns `existing` into `wanted` with.
fn merge_map(existing: &Labels, wanted: &Map<String, Value>) -> Value {
    let mut out = wanted.clone();
    for key in existing.keys() {
        if !out.contains_key(key) {
            out.insert(key.clone(), Value::Null);
        }
    }
    Value::Object(out)
}

fn object_map(object: &Value, pointer: &str) -> Map<String, Value> {
    object
        .pointer(pointer)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The writes for the tag's webhook configuration and Service to point at
/// `revision` (`recording` says whether to record or clear the way back).
fn point_tag(
    snapshot: &ClusterSnapshot,
    control_plane: &ControlPlane,
    tag: &str,
    revision: &str,
    recording: Recording,
) -> Result<TagWrites, Error> {
    let namespace = &snapshot.control_plane_namespace;
    let canonical = Canonical::find(&snapshot.webhook_configurations, revision)
        .map_err(|why| Error::Refused(format!("cannot point tag {tag} at {revision}: {why}")))?;
    let istiod = control_plane.revision(revision);
    let layout = ChartLayout::of(istiod.and_then(|r| r.istiod_version.as_deref()));
    let mut out = TagWrites {
        writes: Vec::new(),
        effects: Vec::new(),
        notes: Vec::new(),
    };
    let target_service = canonical.webhook.service.as_ref().map(|s| s.name.clone());

    // The webhook configuration.
    let name = tag_webhook_name(tag, namespace);
    let existing = snapshot
        .webhook_configurations
        .iter()
        .find(|c| c.name == name);
    let record = |before: Option<&str>| match recording {
        Recording::Record => vec![(
            PREVIOUS_REVISION_ANNOTATION.to_string(),
            record_value(before),
        )],
        Recording::Clear => Vec::new(),
    };
    let reason_points = format!(
        "its webhooks call {}: new pods of namespaces labelled istio.io/rev={tag} get {revision}",
        target_service
            .as_deref()
            .unwrap_or("the revision's injector")
    );
    match existing {
        None => {
            let object =
                tag_webhook_configuration(tag, &canonical, namespace, &layout, &record(None));
            out.effects.push(Effect::WebhookConfiguration {
                name: name.clone(),
                after: webhook_info(&object),
            });
            out.writes.push(Write::create(
                ObjectRef::cluster(ObjectKind::MutatingWebhookConfiguration, &name),
                object,
                format!("create the tag's webhook configuration; {reason_points}"),
            ));
        }
        Some(existing) => {
            let before = existing.labels.get(REV_LABEL).cloned();
            let already = before.as_deref() == Some(canonical.revision_label())
                && existing
                    .webhooks
                    .iter()
                    .all(|w| w.service.as_ref().map(|s| &s.name) == target_service.as_ref())
                && recording == Recording::Record;
            if !already {
                let object = tag_webhook_configuration(
                    tag,
                    &canonical,
                    namespace,
                    &layout,
                    &record(before.as_deref()),
                );
                let mut annotations = object_map(&object, "/metadata/annotations");
                if recording == Recording::Clear
                    && existing
                        .annotations
                        .contains_key(PREVIOUS_REVISION_ANNOTATION)
                {
                    annotations.insert(PREVIOUS_REVISION_ANNOTATION.into(), Value::Null);
                }
                let patch = json!({
                    "metadata": {
                        "labels": merge_map(&existing.labels, &object_map(&object, "/metadata/labels")),
                        "annotations": merge_map(&existing.annotations, &annotations),
                    },
                    "webhooks": object["webhooks"].clone(),
                });
                out.effects.push(Effect::WebhookConfiguration {
                    name: name.clone(),
                    after: webhook_info(&object),
                });
                out.writes.push(
                    Write::patch(
                        ObjectRef::cluster(ObjectKind::MutatingWebhookConfiguration, &name),
                        Patch::Merge(patch),
                        format!(
                            "move it from {} to {revision}; {reason_points}",
                            before.as_deref().unwrap_or("?")
                        ),
                    )
                    .at_version(&existing.resource_version),
                );
            }
        }
    }
    // Other configurations carrying the tag label (another release
    // namespace's): the API server calls them too, and they are not ours.
    for other in snapshot
        .webhook_configurations
        .iter()
        .filter(|c| c.tag() == Some(tag) && c.name != name)
    {
        out.notes.push(format!(
            "webhook configuration {} is labelled istio.io/tag={tag} too and is left as it is (it points at {})",
            other.name,
            other.labels.get(REV_LABEL).map_or("?", String::as_str)
        ));
    }

    // The Service.
    let service_name = tag_service_name(tag);
    let existing = snapshot
        .services
        .iter()
        .find(|s| &s.namespace == namespace && s.name == service_name);
    let service_ref = ObjectRef::namespaced(ObjectKind::Service, namespace, &service_name);
    match existing {
        None if layout.renders_tag_service() => {
            let object = tag_service(tag, revision, namespace, &layout, &record(None));
            out.effects.push(Effect::Service {
                namespace: namespace.clone(),
                name: service_name.clone(),
                after: service_info(&object),
            });
            out.writes.push(Write::create(
                service_ref,
                object,
                "create the tag's Service (Istio 1.28 on): istiod and `istioctl tag list` read the tag from it"
                    .to_string(),
            ));
        }
        None => {
            if recording == Recording::Record && !out.writes.is_empty() {
                out.notes.push(format!(
                    "no Service {service_name}: {} writes the tag as a webhook configuration only (the Service comes with 1.28)",
                    layout.describe()
                ));
            }
        }
        Some(existing) => {
            let before = existing.labels.get(REV_LABEL).cloned();
            let object = tag_service(
                tag,
                revision,
                namespace,
                &layout,
                &record(before.as_deref()),
            );
            let wanted_selector = object_map(&object, "/spec/selector");
            let already = before.as_deref() == Some(revision)
                && Value::Object(wanted_selector.clone())
                    == serde_json::to_value(&existing.selector).unwrap_or_default()
                && recording == Recording::Record;
            if !already {
                let mut annotations = object_map(&object, "/metadata/annotations");
                if recording == Recording::Clear
                    && existing.records.contains_key(PREVIOUS_REVISION_ANNOTATION)
                {
                    annotations.insert(PREVIOUS_REVISION_ANNOTATION.into(), Value::Null);
                }
                let mut metadata = Map::new();
                metadata.insert(
                    "labels".into(),
                    merge_map(&existing.labels, &object_map(&object, "/metadata/labels")),
                );
                if !annotations.is_empty() {
                    metadata.insert("annotations".into(), Value::Object(annotations));
                }
                let patch = json!({
                    "metadata": metadata,
                    "spec": {
                        "selector": merge_map(&existing.selector, &wanted_selector),
                        "ports": object["spec"]["ports"].clone(),
                    },
                });
                let mut after = existing.clone();
                if let Some(generated) = service_info(&object) {
                    after.labels = generated.labels;
                    after.selector = generated.selector;
                    after.ports = generated.ports;
                    after.records = generated.records;
                }
                out.effects.push(Effect::Service {
                    namespace: namespace.clone(),
                    name: service_name.clone(),
                    after: Some(after),
                });
                out.writes.push(
                    Write::patch(
                        service_ref,
                        Patch::Merge(patch),
                        format!(
                            "move it from {} to {revision}: it selects istiod {revision}",
                            before.as_deref().unwrap_or("?")
                        ),
                    )
                    .at_version(&existing.resource_version),
                );
            }
        }
    }
    if !out.writes.is_empty() && layout.version.is_some() {
        out.notes.insert(
            0,
            format!(
                "the objects are those `istioctl tag set {tag} --revision {revision}` of {} writes",
                layout.describe()
            ),
        );
    }
    Ok(out)
}

/// JSON-pointer escaping of one key.
fn pointer_key(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The default revision's own configurations (`istio.io/rev=default`, no
/// tag): what `tag set default` deactivates.
fn default_revision_configurations(snapshot: &ClusterSnapshot) -> Vec<&WebhookConfigurationInfo> {
    snapshot
        .webhook_configurations
        .iter()
        .filter(|c| {
            c.labels.get(REV_LABEL).map(String::as_str) == Some(DEFAULT_TAG)
                && !c.labels.contains_key(TAG_LABEL)
        })
        .collect()
}

/// A configuration whose webhooks all carry the never-match selectors.
fn is_deactivated(config: &WebhookConfigurationInfo) -> bool {
    let never = never_match();
    config.webhooks.iter().all(|w| {
        w.raw_namespace_selector.as_ref() == Some(&never)
            && w.raw_object_selector.as_ref() == Some(&never)
    })
}

fn matcher_of(raw: Option<&Value>) -> LabelMatcher {
    let parsed = raw.and_then(|v| serde_json::from_value(v.clone()).ok());
    LabelMatcher::from_label_selector(parsed.as_ref(), LabelMatcher::everything())
}

/// The JSON patch that makes every webhook of `config` never match, with
/// the selectors it had recorded; the configuration as it will be.
fn deactivate(config: &WebhookConfigurationInfo) -> (Write, WebhookConfigurationInfo) {
    let never = never_match();
    let mut ops = vec![
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": config.resource_version}),
    ];
    let mut recorded = Map::new();
    let mut after = config.clone();
    for (i, hook) in config.webhooks.iter().enumerate() {
        ops.push(json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": hook.name}));
        ops.push(json!({"op": "add", "path": format!("/webhooks/{i}/namespaceSelector"), "value": never}));
        ops.push(
            json!({"op": "add", "path": format!("/webhooks/{i}/objectSelector"), "value": never}),
        );
        recorded.insert(
            hook.name.clone(),
            json!({
                "namespaceSelector": hook.raw_namespace_selector,
                "objectSelector": hook.raw_object_selector,
            }),
        );
        let after_hook = &mut after.webhooks[i];
        after_hook.namespace_selector = matcher_of(Some(&never));
        after_hook.object_selector = matcher_of(Some(&never));
        after_hook.raw_namespace_selector = Some(never.clone());
        after_hook.raw_object_selector = Some(never.clone());
    }
    let record = Value::String(Value::Object(recorded).to_string());
    if config.annotations.is_empty() {
        ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": {DEACTIVATED_WEBHOOKS_ANNOTATION: record}}));
    } else {
        ops.push(json!({"op": "add", "path": format!("/metadata/annotations/{}", pointer_key(DEACTIVATED_WEBHOOKS_ANNOTATION)), "value": record}));
    }
    after.annotations.insert(
        DEACTIVATED_WEBHOOKS_ANNOTATION.to_string(),
        record.as_str().unwrap_or_default().to_string(),
    );
    let mut write = Write::patch(
        ObjectRef::cluster(ObjectKind::MutatingWebhookConfiguration, &config.name),
        Patch::Json(Value::Array(ops)),
        "make the default revision's own webhooks never match, as `istioctl tag set default` does: the default tag's webhooks serve istio-injection=enabled namespaces instead (the selectors are recorded for --undo)".to_string(),
    );
    write.precondition = Precondition::ResourceVersion(config.resource_version.clone());
    (write, after)
}

/// The JSON patch that puts back the selectors recorded by [`deactivate`];
/// `None` when `config` has no readable record.
fn reactivate(config: &WebhookConfigurationInfo) -> Option<(Write, WebhookConfigurationInfo)> {
    let text = config.annotations.get(DEACTIVATED_WEBHOOKS_ANNOTATION)?;
    let recorded: Map<String, Value> = serde_json::from_str(text).ok()?;
    let mut ops = vec![
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": config.resource_version}),
    ];
    let mut after = config.clone();
    for (i, hook) in config.webhooks.iter().enumerate() {
        let Some(saved) = recorded.get(&hook.name) else {
            continue;
        };
        ops.push(json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": hook.name}));
        let after_hook = &mut after.webhooks[i];
        for (field, raw) in [
            ("namespaceSelector", &mut after_hook.raw_namespace_selector),
            ("objectSelector", &mut after_hook.raw_object_selector),
        ] {
            let path = format!("/webhooks/{i}/{field}");
            match saved.get(field).filter(|v| !v.is_null()) {
                Some(value) => {
                    ops.push(json!({"op": "add", "path": path, "value": value}));
                    *raw = Some(value.clone());
                }
                None => {
                    ops.push(json!({"op": "remove", "path": path}));
                    *raw = None;
                }
            }
        }
        after_hook.namespace_selector = matcher_of(after_hook.raw_namespace_selector.as_ref());
        after_hook.object_selector = matcher_of(after_hook.raw_object_selector.as_ref());
    }
    // The record was the only annotation: the map goes with it, as it was
    // before (an empty map is no annotation to the API server).
    if config.annotations.len() == 1 {
        ops.push(json!({"op": "remove", "path": "/metadata/annotations"}));
    } else {
        ops.push(json!({"op": "remove", "path": format!("/metadata/annotations/{}", pointer_key(DEACTIVATED_WEBHOOKS_ANNOTATION))}));
    }
    after.annotations.remove(DEACTIVATED_WEBHOOKS_ANNOTATION);
    let mut write = Write::patch(
        ObjectRef::cluster(ObjectKind::MutatingWebhookConfiguration, &config.name),
        Patch::Json(Value::Array(ops)),
        "put back the default revision's own webhook selectors recorded when the default tag moved: it serves istio-injection=enabled namespaces again".to_string(),
    );
    write.precondition = Precondition::ResourceVersion(config.resource_version.clone());
    Some((write, after))
}

/// Refuse a target revision that does not exist, is a tag, or (without
/// `--force`) has no Ready istiod.
fn check_target(
    control_plane: &ControlPlane,
    tag: &str,
    revision: &str,
    force: bool,
    notes: &mut Vec<String>,
) -> Result<(), Error> {
    let Some(istiod) = control_plane.revision(revision) else {
        let hint = match control_plane.tag(revision) {
            Some(t) => format!(
                "{revision} is a tag (-> {}); a tag points at a revision",
                t.revision.as_deref().unwrap_or("?")
            ),
            None => format!("no istiod of revision {revision}"),
        };
        return Err(Error::Refused(format!(
            "cannot point tag {tag} at {revision}: {hint} ({})",
            known_revisions(control_plane)
        )));
    };
    if !istiod.is_ready() {
        let why = format!(
            "istiod {} (revision {revision}) has no Ready pod ({}/{} ready)",
            istiod.deployment, istiod.ready, istiod.desired
        );
        if !force {
            return Err(Error::Refused(format!(
                "cannot point tag {tag} at {revision}: {why}, so pods created in the namespaces using the tag would fail to start; wait until it is Ready, or pass --force"
            )));
        }
        notes.push(format!(
            "--force: {why}; until it is Ready, pods created in namespaces using tag {tag} fail (the webhooks fail closed)"
        ));
    }
    Ok(())
}

/// The plan for `request` on `snapshot` (which should hold every namespace,
/// so every user of the tag is seen).
pub fn plan(snapshot: &ClusterSnapshot, request: &TagRequest) -> Result<TagPlan, Error> {
    let tag = request.tag.as_str();
    check_tag_name(tag)?;
    let control_plane = ControlPlane::from_snapshot(snapshot);
    let from_revision = control_plane.tag(tag).and_then(|t| t.revision.clone());
    let mut notes = Vec::new();
    let (operation, to_revision, writes, effects, undo) = match &request.operation {
        TagOperation::Set { revision } => {
            let collides = tag != DEFAULT_TAG
                && (control_plane.revision(tag).is_some()
                    || Canonical::find(&snapshot.webhook_configurations, tag).is_ok());
            if collides {
                return Err(Error::Refused(format!(
                    "cannot create tag {tag}: a revision named {tag} exists, and a namespace labelled istio.io/rev={tag} would match both; choose another name"
                )));
            }
            check_target(&control_plane, tag, revision, request.force, &mut notes)?;
            let mut set = point_tag(snapshot, &control_plane, tag, revision, Recording::Record)?;
            notes.append(&mut set.notes);
            if tag == DEFAULT_TAG {
                for config in default_revision_configurations(snapshot) {
                    if is_deactivated(config) {
                        continue;
                    }
                    let (write, after) = deactivate(config);
                    set.writes.push(write);
                    set.effects.push(Effect::WebhookConfiguration {
                        name: config.name.clone(),
                        after: Some(after),
                    });
                }
            }
            let undo = Some(format!("kubectl mesh-upgrade tag set --undo {tag}"));
            ("set", Some(revision.clone()), set.writes, set.effects, undo)
        }
        TagOperation::Undo => {
            let (to, writes, effects) =
                plan_undo(snapshot, &control_plane, tag, request.force, &mut notes)?;
            let undo = from_revision
                .as_ref()
                .map(|r| format!("kubectl mesh-upgrade tag set {tag} --revision {r}"));
            ("undo", to, writes, effects, undo)
        }
        TagOperation::Remove => {
            let (writes, effects) = plan_remove(snapshot, &control_plane, tag)?;
            let undo = from_revision
                .as_ref()
                .map(|r| format!("kubectl mesh-upgrade tag set {tag} --revision {r}"));
            ("remove", None, writes, effects, undo)
        }
    };
    let istio_version = to_revision
        .as_deref()
        .and_then(|r| control_plane.revision(r))
        .and_then(|r| r.istiod_version.clone());
    let mut plan = TagPlan {
        api_version: API_VERSION,
        kind: "TagPlan",
        operation,
        tag: tag.to_string(),
        from_revision,
        to_revision,
        istio_version,
        writes,
        namespaces: Vec::new(),
        workloads: Vec::new(),
        unreachable: Vec::new(),
        gateway_api: Vec::new(),
        notes,
        undo,
        effects,
    };
    let mut after = snapshot.clone();
    plan.apply_to(&mut after);
    let after_control_plane = ControlPlane::from_snapshot(&after);
    plan.namespaces = namespace_moves(snapshot, &control_plane, &after_control_plane);
    let before_classes = classify(snapshot, &control_plane);
    let after_classes = classify(&after, &after_control_plane);
    (plan.workloads, plan.unreachable) = affected(&before_classes, &after_classes);
    plan.gateway_api = affected_gateway_api(snapshot, &control_plane, &after_control_plane);

    if request.operation == TagOperation::Remove {
        let users: Vec<&str> = tag_namespaces(snapshot, &control_plane, tag)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        if !users.is_empty() && !request.force {
            return Err(Error::Refused(format!(
                "tag {tag} is still used by {} namespace{} ({}): new pods there would start without a proxy; move them first (kubectl mesh-upgrade relabel -n {} --to <revision>), or pass --force; nothing was changed",
                users.len(),
                if users.len() == 1 { "" } else { "s" },
                users.join(", "),
                users.join(","),
            )));
        }
        if !users.is_empty() {
            plan.notes.push(format!(
                "--force: {} still use{} tag {tag}; their new pods start without a proxy once it is removed",
                users.join(", "),
                if users.len() == 1 { "s" } else { "" }
            ));
        }
    }
    Ok(plan)
}

/// What undoing a tag writes: the revision it points at after (`None`:
/// removed), the writes and their effects.
type Undo = (Option<String>, Vec<Write>, Vec<Effect>);

/// `tag set --undo`: each tag object back to its recorded revision (or
/// deleted when the move created it), and for `default` the default
/// revision's webhooks put back.
fn plan_undo(
    snapshot: &ClusterSnapshot,
    control_plane: &ControlPlane,
    tag: &str,
    force: bool,
    notes: &mut Vec<String>,
) -> Result<Undo, Error> {
    let namespace = &snapshot.control_plane_namespace;
    let webhook_name = tag_webhook_name(tag, namespace);
    let config = snapshot
        .webhook_configurations
        .iter()
        .find(|c| c.name == webhook_name);
    let service_name = tag_service_name(tag);
    let service = snapshot
        .services
        .iter()
        .find(|s| &s.namespace == namespace && s.name == service_name);
    let config_record = config
        .and_then(|c| c.annotations.get(PREVIOUS_REVISION_ANNOTATION))
        .map(|t| (t, parse_record(t)));
    let service_record = service
        .and_then(|s| s.records.get(PREVIOUS_REVISION_ANNOTATION))
        .map(|t| (t, parse_record(t)));
    for (what, record) in [
        (
            format!("webhook configuration {webhook_name}"),
            &config_record,
        ),
        (
            format!("Service {namespace}/{service_name}"),
            &service_record,
        ),
    ] {
        if let Some((text, None)) = record {
            return Err(Error::Refused(format!(
                "cannot undo tag {tag}: the annotation {PREVIOUS_REVISION_ANNOTATION} of {what} is unreadable ({text:?}); fix or remove it, or move the tag with `kubectl mesh-upgrade tag set {tag} --revision <revision>`"
            )));
        }
    }
    let config_target = config_record.and_then(|(_, r)| r);
    let service_target = service_record.and_then(|(_, r)| r);
    if config_target.is_none() && service_target.is_none() {
        let exists = config.is_some() || service.is_some();
        return Err(Error::Refused(if exists {
            format!(
                "cannot undo tag {tag}: nothing recorded on it (the annotation {PREVIOUS_REVISION_ANNOTATION}, written by `kubectl mesh-upgrade tag set`); move it with `kubectl mesh-upgrade tag set {tag} --revision <revision>`"
            )
        } else {
            format!(
                "cannot undo tag {tag}: no such tag ({})",
                known_tags(control_plane)
            )
        }));
    }
    // The revision the tag points at after: what its webhooks will call.
    let to = match (&config_target, &service_target) {
        (Some(r), _) => r.clone(),
        (None, Some(r)) => r.clone(),
        (None, None) => None,
    };
    let mut writes = Vec::new();
    let mut effects = Vec::new();
    if tag == DEFAULT_TAG {
        for c in default_revision_configurations(snapshot) {
            if let Some((write, after)) = reactivate(c) {
                writes.push(write);
                effects.push(Effect::WebhookConfiguration {
                    name: c.name.clone(),
                    after: Some(after),
                });
            }
        }
    }
    let mut targets: BTreeSet<String> = BTreeSet::new();
    for r in [&config_target, &service_target]
        .into_iter()
        .flatten()
        .flatten()
    {
        targets.insert(r.clone());
    }
    for revision in &targets {
        check_target(control_plane, tag, revision, force, notes)?;
    }
    // Objects going back to a revision: regenerated for it, record cleared.
    let mut moved = match (&config_target, &service_target) {
        (Some(Some(r)), _) | (None, Some(Some(r))) => Some(point_tag(
            snapshot,
            control_plane,
            tag,
            r,
            Recording::Clear,
        )?),
        _ => None,
    };
    let keep = |write: &Write| -> bool {
        match write.target.kind {
            ObjectKind::MutatingWebhookConfiguration => matches!(config_target, Some(Some(_))),
            ObjectKind::Service => matches!(service_target, Some(Some(_))),
            _ => false,
        }
    };
    if let Some(m) = moved.as_mut() {
        let pairs: Vec<(Write, Effect)> = m.writes.drain(..).zip(m.effects.drain(..)).collect();
        for (write, effect) in pairs {
            if keep(&write) && !matches!(write.change, crate::write::Change::Create(_)) {
                writes.push(write);
                effects.push(effect);
            }
        }
    }
    // Objects the move created: deleted.
    if let (Some(None), Some(c)) = (&config_target, config) {
        writes.push(Write::delete(
            ObjectRef::cluster(ObjectKind::MutatingWebhookConfiguration, &c.name),
            &c.uid,
            format!("delete it: `kubectl mesh-upgrade tag set {tag}` created it"),
        ));
        effects.push(Effect::WebhookConfiguration {
            name: c.name.clone(),
            after: None,
        });
    }
    if let (Some(None), Some(s)) = (&service_target, service) {
        writes.push(Write::delete(
            ObjectRef::namespaced(ObjectKind::Service, namespace, &s.name),
            &s.uid,
            format!("delete it: `kubectl mesh-upgrade tag set {tag}` created it"),
        ));
        effects.push(Effect::Service {
            namespace: namespace.clone(),
            name: s.name.clone(),
            after: None,
        });
    }
    Ok((to, writes, effects))
}

/// `tag remove`: every webhook configuration labelled with the tag, and
/// every Service of the control-plane namespace labelled with it, deleted
/// (what `istioctl tag remove` deletes, validating webhooks aside).
fn plan_remove(
    snapshot: &ClusterSnapshot,
    control_plane: &ControlPlane,
    tag: &str,
) -> Result<(Vec<Write>, Vec<Effect>), Error> {
    let namespace = &snapshot.control_plane_namespace;
    let mut writes = Vec::new();
    let mut effects = Vec::new();
    let mut configs: Vec<&WebhookConfigurationInfo> = snapshot
        .webhook_configurations
        .iter()
        .filter(|c| c.tag() == Some(tag))
        .collect();
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    for c in configs {
        writes.push(Write::delete(
            ObjectRef::cluster(ObjectKind::MutatingWebhookConfiguration, &c.name),
            &c.uid,
            format!(
                "delete the tag's webhook configuration (points at {})",
                c.labels.get(REV_LABEL).map_or("?", String::as_str)
            ),
        ));
        effects.push(Effect::WebhookConfiguration {
            name: c.name.clone(),
            after: None,
        });
    }
    let mut services: Vec<&ServiceInfo> = snapshot
        .services
        .iter()
        .filter(|s| {
            &s.namespace == namespace && s.labels.get(TAG_LABEL).map(String::as_str) == Some(tag)
        })
        .collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    for s in services {
        writes.push(Write::delete(
            ObjectRef::namespaced(ObjectKind::Service, namespace, &s.name),
            &s.uid,
            "delete the tag's Service".to_string(),
        ));
        effects.push(Effect::Service {
            namespace: namespace.clone(),
            name: s.name.clone(),
            after: None,
        });
    }
    if writes.is_empty() {
        return Err(Error::Refused(format!(
            "cannot remove tag {tag}: no webhook configuration or Service labelled istio.io/tag={tag} ({})",
            known_tags(control_plane)
        )));
    }
    Ok((writes, effects))
}

/// How a namespace selects `tag`: its `istio.io/rev` label, or (for the
/// `default` tag) `istio-injection=enabled`.
fn via(namespace: &NamespaceInfo) -> String {
    match (
        namespace.labels.get(INJECTION_LABEL),
        namespace.labels.get(REV_LABEL),
    ) {
        (Some(v), _) => format!("{INJECTION_LABEL}={v}"),
        (None, Some(r)) => format!("{REV_LABEL}={r}"),
        (None, None) => "no injection label".to_string(),
    }
}

/// The namespaces that use `tag`: labelled `istio.io/rev=<tag>` (what
/// `istioctl tag list` counts), or whose new pods are injected through the
/// tag's webhooks (`default`: `istio-injection=enabled`); with how.
pub fn tag_namespaces<'a>(
    snapshot: &'a ClusterSnapshot,
    control_plane: &ControlPlane,
    tag: &str,
) -> Vec<(&'a str, String)> {
    let mut out: Vec<(&str, String)> = snapshot
        .namespaces
        .iter()
        .filter(|n| !n.terminating)
        .filter(|n| {
            n.labels.get(REV_LABEL).map(String::as_str) == Some(tag)
                || matches!(
                    expected_revision(n, &Labels::new(), &Labels::new(), control_plane),
                    InjectionOutcome::Injected { via_tag: Some(t), .. } if t == tag
                )
        })
        .map(|n| (n.name.as_str(), via(n)))
        .collect();
    out.sort();
    out
}

fn outcome_revision(outcome: &InjectionOutcome) -> Option<String> {
    match outcome {
        InjectionOutcome::NotInjected { .. } => None,
        other => other.revision().map(str::to_string),
    }
}

/// Namespaces whose new pods get another revision after the change.
fn namespace_moves(
    snapshot: &ClusterSnapshot,
    before: &ControlPlane,
    after: &ControlPlane,
) -> Vec<NamespaceMove> {
    let mut out: Vec<NamespaceMove> = snapshot
        .namespaces
        .iter()
        .filter(|n| !n.terminating)
        .filter_map(|n| {
            let now = outcome_revision(&expected_revision(
                n,
                &Labels::new(),
                &Labels::new(),
                before,
            ));
            let then =
                outcome_revision(&expected_revision(n, &Labels::new(), &Labels::new(), after));
            (now != then).then(|| NamespaceMove {
                namespace: n.name.clone(),
                via: via(n),
                before: now,
                after: then,
            })
        })
        .collect();
    out.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    out
}

/// Workloads and unreachable pods whose expected revision changes.
fn affected(
    before: &Classification,
    after: &Classification,
) -> (Vec<AffectedWorkload>, Vec<AffectedPod>) {
    let after_workloads: BTreeMap<(&str, WorkloadKind, &str), _> = after
        .workloads
        .iter()
        .map(|w| ((w.namespace.as_str(), w.kind, w.name.as_str()), w))
        .collect();
    let mut workloads = Vec::new();
    for w in &before.workloads {
        let Some(then) = after_workloads.get(&(w.namespace.as_str(), w.kind, w.name.as_str()))
        else {
            continue;
        };
        let now_revision = outcome_revision(&w.expected);
        let then_revision = outcome_revision(&then.expected);
        if now_revision == then_revision {
            continue;
        }
        workloads.push(AffectedWorkload {
            namespace: w.namespace.to_string(),
            kind: w.kind,
            name: w.name.to_string(),
            gateway: w.is_gateway,
            running: w.proxies.clone(),
            before: now_revision,
            after: then_revision,
            after_version: then.expected_version.clone(),
            becomes_stale: then.state == WorkloadState::Stale,
        });
    }
    let after_pods: BTreeMap<(&str, &str), _> = after
        .unreachable
        .iter()
        .map(|p| ((p.namespace.as_str(), p.name.as_str()), p))
        .collect();
    let mut pods = Vec::new();
    for p in &before.unreachable {
        let Some(then) = after_pods.get(&(p.namespace.as_str(), p.name.as_str())) else {
            continue;
        };
        let now_revision = outcome_revision(&p.expected);
        let then_revision = outcome_revision(&then.expected);
        if now_revision == then_revision || then.state != WorkloadState::Stale {
            continue;
        }
        pods.push(AffectedPod {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            reason: p.reason.to_string(),
            before: now_revision,
            after: then_revision,
            command: then.command.clone(),
        });
    }
    (workloads, pods)
}

/// The Gateways of Istio's classes whose serving revision differs between
/// the control plane now and after the move (the Gateway's own
/// `istio.io/rev`, else its namespace's, else the default: the same rule
/// `status` shows them by).
fn affected_gateway_api(
    snapshot: &ClusterSnapshot,
    before: &ControlPlane,
    after: &ControlPlane,
) -> Vec<AffectedGatewayApi> {
    use crate::mesh::gateway_api::{gateway_kind, serving_revision};
    snapshot
        .gateway_api
        .gateways
        .iter()
        .filter(|g| gateway_kind(snapshot, &g.class).is_some())
        .filter_map(|g| {
            let namespace = snapshot.namespace(&g.namespace);
            let now = serving_revision(&g.labels, namespace, before).revision;
            let then = serving_revision(&g.labels, namespace, after).revision;
            (now != then).then(|| AffectedGatewayApi {
                namespace: g.namespace.clone(),
                name: g.name.clone(),
                class: g.class.clone(),
                before: now,
                after: then,
            })
        })
        .collect()
}

/// Whether `fresh` (the object as read after a 409) already shows what
/// `write` makes of it: the write landed (a retry after the server stored
/// it), so it is not sent again.
pub fn landed(write: &Write, fresh: &Value) -> bool {
    use crate::write::Change;
    let labels_match = |wanted: &Value| {
        [REV_LABEL, TAG_LABEL].iter().all(|key| {
            let pointer = format!("/metadata/labels/{}", pointer_key(key));
            match wanted.pointer(&pointer) {
                None => true,
                Some(Value::Null) => fresh.pointer(&pointer).is_none(),
                Some(v) => fresh.pointer(&pointer) == Some(v),
            }
        })
    };
    let record_matches = |wanted: &Value| {
        let pointer = format!(
            "/metadata/annotations/{}",
            pointer_key(PREVIOUS_REVISION_ANNOTATION)
        );
        match wanted.pointer(&pointer) {
            None => true,
            Some(Value::Null) => fresh.pointer(&pointer).is_none(),
            Some(v) => fresh.pointer(&pointer) == Some(v),
        }
    };
    let webhook_services = |object: &Value| -> Vec<Option<Value>> {
        object["webhooks"]
            .as_array()
            .map(|hooks| {
                hooks
                    .iter()
                    .map(|h| h.pointer("/clientConfig/service/name").cloned())
                    .collect()
            })
            .unwrap_or_default()
    };
    match &write.change {
        Change::Create(object) | Change::Patch(Patch::Merge(object)) => {
            let webhooks_match = object.get("webhooks").is_none()
                || webhook_services(object) == webhook_services(fresh);
            let selector_matches = match object.pointer("/spec/selector") {
                None => true,
                Some(Value::Object(wanted)) => wanted.iter().all(|(k, v)| {
                    let got = fresh.pointer(&format!("/spec/selector/{}", pointer_key(k)));
                    if v.is_null() {
                        got.is_none()
                    } else {
                        got == Some(v)
                    }
                }),
                Some(_) => false,
            };
            labels_match(object) && record_matches(object) && webhooks_match && selector_matches
        }
        Change::Patch(Patch::Json(ops)) => {
            // The default revision's webhooks: (de)activated as planned when
            // every selector the patch sets is there, and the record is as
            // the patch leaves it.
            ops.as_array().is_some_and(|ops| {
                ops.iter().all(|op| {
                    let path = op["path"].as_str().unwrap_or_default();
                    match op["op"].as_str() {
                        Some("add") if path.contains("Selector") => {
                            fresh.pointer(path) == Some(&op["value"])
                        }
                        Some("remove") => fresh.pointer(path).is_none(),
                        _ => true,
                    }
                }) && {
                    let pointer = format!(
                        "/metadata/annotations/{}",
                        pointer_key(DEACTIVATED_WEBHOOKS_ANNOTATION)
                    );
                    let adds_record = ops.iter().any(|op| {
                        op["op"] == "add"
                            && op["path"]
                                .as_str()
                                .is_some_and(|p| p.starts_with("/metadata/annotations"))
                    });
                    adds_record == fresh.pointer(&pointer).is_some()
                }
            })
        }
        Change::Patch(Patch::Strategic(_)) | Change::Delete | Change::Evict => false,
    }
}

/// One row of `tag list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagEntry {
    pub name: String,
    /// The revision it points at (`null`: its webhooks call no istiod).
    pub revision: Option<String>,
    /// `webhook`, `service` or `both`.
    pub representation: &'static str,
    /// `istio-revision-tag-<tag>`, when it exists.
    pub webhook_configuration: Option<String>,
    /// `istiod-revision-tag-<tag>`, when it exists.
    pub service: Option<String>,
    /// Namespaces that use it: labelled `istio.io/rev=<tag>`, or injected
    /// through it (`default`: `istio-injection=enabled`).
    pub namespaces: Vec<String>,
    /// Running pods whose kind of pod is injected through it now.
    pub pods: usize,
    /// Those pods by namespace.
    pub pods_by_namespace: BTreeMap<String, usize>,
    /// What `tag set --undo` returns to: `{revision: <rev>}`, or
    /// `{revision: null}` when undo deletes it; `null` when nothing is recorded.
    pub undo: Option<UndoRecord>,
    /// Sentences about it (a Service without a webhook, the two disagreeing).
    pub problems: Vec<String>,
}

/// A tag's recorded way back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UndoRecord {
    pub revision: Option<String>,
}

/// The `tag list` document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagList {
    pub api_version: &'static str,
    /// `TagList`.
    pub kind: &'static str,
    pub control_plane_namespace: String,
    /// Sorted by name.
    pub tags: Vec<TagEntry>,
}

/// Every tag, its revision, how it is represented and who uses it.
pub fn tag_list(snapshot: &ClusterSnapshot) -> TagList {
    let control_plane = ControlPlane::from_snapshot(snapshot);
    let classification = classify(snapshot, &control_plane);
    let namespace = &snapshot.control_plane_namespace;
    let via_tag = |outcome: &InjectionOutcome| match outcome {
        InjectionOutcome::Injected { via_tag, .. } => via_tag.clone(),
        _ => None,
    };
    let mut pods: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for w in &classification.workloads {
        if let Some(tag) = via_tag(&w.expected) {
            let running = w.pods.iter().filter(|p| p.proxy.is_some()).count();
            if running > 0 {
                *pods
                    .entry(tag)
                    .or_default()
                    .entry(w.namespace.to_string())
                    .or_default() += running;
            }
        }
    }
    for p in &classification.unreachable {
        if let (Some(tag), Some(_)) = (via_tag(&p.expected), &p.proxy) {
            *pods
                .entry(tag)
                .or_default()
                .entry(p.namespace.clone())
                .or_default() += 1;
        }
    }
    let tags = control_plane
        .tags
        .iter()
        .map(|t| {
            let service = snapshot
                .services
                .iter()
                .find(|s| &s.namespace == namespace && t.service.as_deref() == Some(s.name.as_str()));
            let mut problems = Vec::new();
            if t.configuration.is_none() {
                problems.push(format!(
                    "no injector webhook serves it, so pods of namespaces labelled istio.io/rev={} start without a proxy; `kubectl mesh-upgrade tag set {} --revision {}` adds the webhook",
                    t.name,
                    t.name,
                    t.revision.as_deref().unwrap_or("<revision>")
                ));
            }
            if let (Some(s), Some(r)) = (service, &t.revision) {
                let service_revision = s.labels.get(REV_LABEL);
                if t.configuration.is_some() && service_revision != Some(r) {
                    problems.push(format!(
                        "its Service {} says revision {} but its webhooks call {r}",
                        s.name,
                        service_revision.map_or("?", String::as_str)
                    ));
                }
            }
            let record = t
                .configuration
                .as_ref()
                .and_then(|name| snapshot.webhook_configurations.iter().find(|c| &c.name == name))
                .and_then(|c| c.annotations.get(PREVIOUS_REVISION_ANNOTATION))
                .or_else(|| service.and_then(|s| s.records.get(PREVIOUS_REVISION_ANNOTATION)))
                .and_then(|text| parse_record(text))
                .map(|revision| UndoRecord { revision });
            let by_namespace = pods.get(&t.name).cloned().unwrap_or_default();
            TagEntry {
                name: t.name.clone(),
                revision: t.revision.clone(),
                representation: match (&t.configuration, &t.service) {
                    (Some(_), Some(_)) => "both",
                    (Some(_), None) => "webhook",
                    _ => "service",
                },
                webhook_configuration: t.configuration.clone(),
                service: t.service.clone(),
                namespaces: tag_namespaces(snapshot, &control_plane, &t.name)
                    .into_iter()
                    .map(|(n, _)| n.to_string())
                    .collect(),
                pods: by_namespace.values().sum(),
                pods_by_namespace: by_namespace,
                undo: record,
                problems,
            }
        })
        .collect();
    TagList {
        api_version: API_VERSION,
        kind: "TagList",
        control_plane_namespace: namespace.clone(),
        tags,
    }
}

/// How one write of a tag plan ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteOutcome {
    /// Sent and stored.
    Written,
    /// Sent with `dryRun=All`: accepted, not stored.
    Rehearsed,
    /// Conflicted, and the object as it is now already shows the write (a
    /// retry after the server stored it): not sent again.
    Landed,
    /// A delete found nothing to delete.
    AlreadyGone,
    Failed,
    /// Not sent: an earlier write failed, or Ctrl-C.
    NotSent,
}

impl WriteOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteOutcome::Written => "written",
            WriteOutcome::Rehearsed => "rehearsed",
            WriteOutcome::Landed => "already-written",
            WriteOutcome::AlreadyGone => "already-gone",
            WriteOutcome::Failed => "failed",
            WriteOutcome::NotSent => "not-sent",
        }
    }

    /// Whether the cluster now shows the write.
    pub fn took_effect(self) -> bool {
        matches!(
            self,
            WriteOutcome::Written | WriteOutcome::Landed | WriteOutcome::AlreadyGone
        )
    }
}

/// One write's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagWriteResult {
    pub target: ObjectRef,
    /// `create`, `patch` or `delete`.
    pub change: &'static str,
    pub outcome: WriteOutcome,
    /// Why it failed, or what was found.
    pub detail: Option<String>,
}

/// `create`, `patch` or `delete`.
pub fn change_name(write: &Write) -> &'static str {
    match write.change {
        crate::write::Change::Create(_) => "create",
        crate::write::Change::Patch(_) => "patch",
        crate::write::Change::Delete => "delete",
        crate::write::Change::Evict => "evict",
    }
}

/// What `tag set`/`--undo`/`remove` did (`-o json|yaml`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagReport {
    pub api_version: &'static str,
    /// `TagReport`.
    pub kind: &'static str,
    pub operation: &'static str,
    pub tag: String,
    pub from_revision: Option<String>,
    pub to_revision: Option<String>,
    /// `--dry-run=server`: nothing was stored.
    pub server_dry_run: bool,
    /// One per planned write, in order.
    pub results: Vec<TagWriteResult>,
    /// Namespaces whose new pods now get another revision.
    pub namespaces: Vec<NamespaceMove>,
    /// Workloads that now run another proxy than a new pod gets.
    pub stale: Vec<AffectedWorkload>,
    /// The command that undoes it (when something was written).
    pub undo: Option<String>,
}

impl TagReport {
    pub fn new(plan: &TagPlan, results: Vec<TagWriteResult>, server_dry_run: bool) -> Self {
        let wrote = results.iter().any(|r| r.outcome.took_effect());
        TagReport {
            api_version: API_VERSION,
            kind: "TagReport",
            operation: plan.operation,
            tag: plan.tag.clone(),
            from_revision: plan.from_revision.clone(),
            to_revision: plan.to_revision.clone(),
            server_dry_run,
            results,
            namespaces: plan.namespaces.clone(),
            stale: plan.becoming_stale().into_iter().cloned().collect(),
            undo: if wrote { plan.undo.clone() } else { None },
        }
    }

    /// The writes that failed.
    pub fn failures(&self) -> Vec<&TagWriteResult> {
        self.results
            .iter()
            .filter(|r| r.outcome == WriteOutcome::Failed)
            .collect()
    }

    /// The writes the cluster now shows.
    pub fn written(&self) -> Vec<&TagWriteResult> {
        self.results
            .iter()
            .filter(|r| r.outcome.took_effect())
            .collect()
    }
}

#[cfg(test)]
mod tests;
