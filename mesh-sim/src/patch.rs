//! PATCH bodies in the four content types the API server accepts.
//!
//! [`apply_patch`] turns the stored object and a request body into the
//! object to store; the caller (the server) then writes it through
//! [`crate::world::World::update`], which owns `resourceVersion` checks,
//! generation bumps and dry runs. A `resourceVersion` in a patch body is
//! carried into the result untouched so the caller can treat it as a
//! precondition, as the API server does.
//!
//! | content type | implemented by |
//! |---|---|
//! | `application/merge-patch+json` (RFC 7386) | `json_patch::merge` |
//! | `application/json-patch+json` (RFC 6902) | `json_patch::patch` (atomic: all operations or none) |
//! | `application/strategic-merge-patch+json` | [`strategic_merge`], here |
//! | `application/apply-patch+yaml` (server-side apply) | [`server_side_apply`], here, simplified |
//!
//! The `json-patch` crate is used for the two RFC formats because it is the
//! maintained Rust implementation of both and its `patch` is atomic, as the
//! API server's is.
//!
//! # Strategic merge patch
//!
//! Kubernetes decides how to merge each list from struct tags on its Go
//! types (`patchStrategy`, `patchMergeKey`). The simulator has no Go types,
//! so [`Context`] walks down the object alongside the patch and a small table
//! ([`Context::field`]) says, for a field name *in a given parent*, what the
//! child is and how a list there merges: `spec.ports` of a Service merges by
//! `port`, `ports` of a container by `containerPort`, `tolerations` are
//! replaced. The table covers the built-in kinds this simulator serves (pods
//! and the workloads that template them, Services, webhook configurations,
//! object metadata, status conditions), not every Kubernetes type; a list it
//! does not know is replaced, which is the API server's behaviour for lists
//! without a merge strategy. Custom resources are refused with 415, as the
//! API server refuses strategic merge for them.
//!
//! Directives: `$patch: replace|merge|delete` on maps and list elements,
//! `$setElementOrder/<list>` (the listed elements take the listed order,
//! others keep their places), `$deleteFromPrimitiveList/<list>`, and
//! `$retainKeys` (keys of the map not listed are cleared). None of them is
//! ever stored.
//!
//! # Server-side apply, simplified
//!
//! The applied object is merged into the current one with the same table
//! (maps merge, keyed lists merge by key, other lists are replaced); `null`
//! in applied configuration means "not set" and never deletes. Ownership is
//! tracked per field manager in `metadata.managedFields` (`operation:
//! Apply`, `fieldsType: FieldsV1`, no `time`: this module has no clock), so
//! that
//!
//! - a field the same manager applied before and no longer applies is
//!   removed, unless another applier also owns it;
//! - applying a different value to a field another *applier* owns is a 409
//!   conflict, unless `force` is set, which moves ownership.
//!
//! Ownership from non-apply writes (`Update` managers) is not tracked, so
//! those never conflict; that is the main simplification.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The patch content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type of a request's `Content-Type`, ignoring parameters
    /// such as `; charset=utf-8`; `None` for anything else (answer 415).
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media_type = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media_type.as_str() {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }

    /// The media type clients send for this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Json => "application/json-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Kinds served by the simulator that the API server would serve natively
/// (and so accept strategic merge patches for). `Scale` is the `/scale`
/// subresource's kind. Argo's Rollout sits in the built-in table but comes
/// from a CRD on a real cluster.
fn is_builtin_kind(kind: &str) -> bool {
    kind == "Scale"
        || crate::resources::BUILTIN
            .iter()
            .any(|r| r.kind == kind && !r.is_custom())
}

/// Applies a PATCH body to the current object and returns the object to
/// store.
///
/// `current` is `Value::Null` when there is no object yet; only server-side
/// apply can then produce one (the caller creates it). `kind` picks the
/// strategic-merge table; `field_manager` and `force` are the query
/// parameters, used by server-side apply.
///
/// Errors are the API server's: an undecodable body is 400 BadRequest; a
/// JSON patch that cannot be applied (including a failed `test`) is 422
/// Invalid; a strategic merge patch for a custom resource is 415; an apply
/// without a field manager is 422; an apply conflict is 409.
pub fn apply_patch(
    patch_type: PatchType,
    current: &Value,
    body: &[u8],
    kind: &str,
    field_manager: Option<&str>,
    force: bool,
) -> Result<Value, ApiError> {
    let result = match patch_type {
        PatchType::Merge => {
            let patch: Value = decode_json(body)?;
            let mut result = current.clone();
            json_patch::merge(&mut result, &patch);
            result
        }
        PatchType::Json => {
            let operations: json_patch::Patch = decode_json(body)?;
            let mut result = current.clone();
            json_patch::patch(&mut result, &operations)
                .map_err(|e| unprocessable(e.to_string()))?;
            result
        }
        PatchType::Strategic => {
            if !is_builtin_kind(kind) {
                return Err(strategic_merge_unsupported());
            }
            let patch: Value = decode_json(body)?;
            strategic_merge(current, &patch, kind)?
        }
        PatchType::Apply => {
            let manager = field_manager.filter(|m| !m.is_empty()).ok_or_else(|| {
                unprocessable("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
            })?;
            let applied: Value = serde_yaml::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            check_applied_type(&applied, kind, body)?;
            server_side_apply(current, &applied, kind, manager, force)?
        }
    };
    if !result.is_object() {
        return Err(unprocessable(format!(
            "the patched object is not a JSON object: {result}"
        )));
    }
    Ok(result)
}

fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

/// 422 Invalid, the API server's answer to a patch it understood but could
/// not apply.
fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError {
        code: 422,
        reason: "Invalid",
        message: message.into(),
        retry_after: None,
        details: None,
        causes: None,
    }
}

/// 415 for a strategic merge patch of a custom resource; the accepted types
/// listed are those the API server lists for custom resources.
fn strategic_merge_unsupported() -> ApiError {
    ApiError {
        code: 415,
        reason: "UnsupportedMediaType",
        message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".to_string(),
        retry_after: None,
        details: None,
        causes: None,
    }
}

/// An applied configuration must be an object naming its `apiVersion` and
/// `kind`, and the kind must be the one patched.
fn check_applied_type(applied: &Value, kind: &str, body: &[u8]) -> Result<(), ApiError> {
    let Some(object) = applied.as_object() else {
        return Err(ApiError::bad_request(
            "error decoding YAML: the applied configuration is not an object",
        ));
    };
    let shown = String::from_utf8_lossy(body);
    for required in ["apiVersion", "kind"] {
        if object
            .get(required)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            let what = if required == "kind" {
                "Kind"
            } else {
                "Version"
            };
            return Err(ApiError::bad_request(format!(
                "error decoding YAML: Object '{what}' is missing in '{}'",
                shown.trim()
            )));
        }
    }
    match object.get("kind").and_then(Value::as_str) {
        Some(applied_kind) if applied_kind != kind && kind != "Scale" => {
            Err(ApiError::bad_request(format!(
                "the kind in the applied configuration ({applied_kind}) does not match the object patched ({kind})"
            )))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// The merge table
// ---------------------------------------------------------------------------

/// What kind of object a position in the document is, as far as merging
/// cares. Positions the table does not know are [`Context::Other`], where
/// maps still merge and lists are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// The top of an object of the given kind.
    Root(RootKind),
    ObjectMeta,
    /// `spec` of a Deployment, ReplicaSet, StatefulSet, DaemonSet or Job.
    WorkloadSpec,
    CronJobSpec,
    /// `spec.jobTemplate` of a CronJob.
    JobTemplate,
    /// `spec.template` of a workload.
    PodTemplate,
    PodSpec,
    Container,
    ServiceSpec,
    /// `status` of any kind: conditions merge by `type`.
    Status,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RootKind {
    Pod,
    Workload,
    CronJob,
    Service,
    Other,
}

impl RootKind {
    fn of(kind: &str) -> Self {
        match kind {
            "Pod" => RootKind::Pod,
            "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => RootKind::Workload,
            "CronJob" => RootKind::CronJob,
            "Service" => RootKind::Service,
            _ => RootKind::Other,
        }
    }
}

/// How a list merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListMerge {
    /// No strategy: the patch's list replaces the current one.
    Replace,
    /// A list of objects merged element by element on this key.
    ByKey(&'static str),
    /// A list of primitives merged as a set (`finalizers`).
    Set,
}

impl Context {
    /// The context of `field` inside this context and, if it holds a list,
    /// how that list merges (its elements are in the returned context).
    fn field(self, field: &str) -> (Context, ListMerge) {
        use Context as C;
        use ListMerge::{ByKey, Replace, Set};
        match (self, field) {
            (C::Root(_), "metadata") => (C::ObjectMeta, Replace),
            (C::Root(RootKind::Pod), "spec") => (C::PodSpec, Replace),
            (C::Root(RootKind::Workload), "spec") => (C::WorkloadSpec, Replace),
            (C::Root(RootKind::CronJob), "spec") => (C::CronJobSpec, Replace),
            (C::Root(RootKind::Service), "spec") => (C::ServiceSpec, Replace),
            (C::Root(_), "status") => (C::Status, Replace),
            // Mutating and validating webhook configurations.
            (C::Root(_), "webhooks") => (C::Other, ByKey("name")),

            (C::ObjectMeta, "finalizers") => (C::Other, Set),
            (C::ObjectMeta, "ownerReferences") => (C::Other, ByKey("uid")),

            (C::WorkloadSpec, "template") => (C::PodTemplate, Replace),
            (C::CronJobSpec, "jobTemplate") => (C::JobTemplate, Replace),
            (C::JobTemplate, "metadata") => (C::ObjectMeta, Replace),
            (C::JobTemplate, "spec") => (C::WorkloadSpec, Replace),
            (C::PodTemplate, "metadata") => (C::ObjectMeta, Replace),
            (C::PodTemplate, "spec") => (C::PodSpec, Replace),

            (C::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
                (C::Container, ByKey("name"))
            }
            (C::PodSpec, "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates") => {
                (C::Other, ByKey("name"))
            }
            (C::PodSpec, "hostAliases") => (C::Other, ByKey("ip")),
            (C::PodSpec, "topologySpreadConstraints") => (C::Other, ByKey("topologyKey")),

            (C::Container, "env") => (C::Other, ByKey("name")),
            (C::Container, "ports") => (C::Other, ByKey("containerPort")),
            (C::Container, "volumeMounts") => (C::Other, ByKey("mountPath")),
            (C::Container, "volumeDevices") => (C::Other, ByKey("devicePath")),

            (C::ServiceSpec, "ports") => (C::Other, ByKey("port")),

            (C::Status, "conditions") => (C::Other, ByKey("type")),
            // A Node's addresses; a Pod's IPs.
            (C::Status, "addresses") => (C::Other, ByKey("type")),
            (C::Status, "podIPs" | "hostIPs") => (C::Other, ByKey("ip")),

            _ => (C::Other, Replace),
        }
    }
}

// ---------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Strategic merge and apply share the walk; they differ in what `null`
/// means and whether `$` directives are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `null` deletes, directives are honoured.
    Strategic,
    /// `null` is "not set", keys are plain data.
    Apply,
}

/// Applies a strategic merge patch to an object of a built-in `kind`.
///
/// Does not check that `kind` is built in; [`apply_patch`] refuses custom
/// resources before calling this.
pub fn strategic_merge(current: &Value, patch: &Value, kind: &str) -> Result<Value, ApiError> {
    let Some(patch) = patch.as_object() else {
        return Err(ApiError::bad_request(
            "error decoding patch: a strategic merge patch must be a JSON object",
        ));
    };
    let empty = Map::new();
    let current = current.as_object().unwrap_or(&empty);
    let context = Context::Root(RootKind::of(kind));
    match merge_map(current, patch, context, Mode::Strategic)? {
        Some(merged) => Ok(Value::Object(merged)),
        // `{"$patch": "delete"}` at the top: the API server ends up with an
        // empty object, which then fails validation.
        None => Ok(Value::Object(Map::new())),
    }
}

/// Merges `patch` into `current`. `None` means the patch deletes the map.
fn merge_map(
    current: &Map<String, Value>,
    patch: &Map<String, Value>,
    context: Context,
    mode: Mode,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let mut result = current.clone();
    if mode == Mode::Strategic {
        match patch.get(PATCH_DIRECTIVE) {
            None => {}
            Some(Value::String(directive)) if directive == "merge" => {}
            Some(Value::String(directive)) if directive == "delete" => return Ok(None),
            Some(Value::String(directive)) if directive == "replace" => result = Map::new(),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unknown patch type: {other} in map: {}",
                    Value::Object(patch.clone())
                )));
            }
        }
    }

    for (key, patch_value) in patch {
        if mode == Mode::Strategic && key.starts_with('$') {
            continue;
        }
        let (child_context, list_merge) = context.field(key);
        match patch_value {
            Value::Null => {
                if mode == Mode::Strategic {
                    result.remove(key);
                }
            }
            Value::Object(patch_child) => {
                let empty = Map::new();
                let current_child = result.get(key).and_then(Value::as_object).unwrap_or(&empty);
                match merge_map(current_child, patch_child, child_context, mode)? {
                    Some(merged) => {
                        result.insert(key.clone(), Value::Object(merged));
                    }
                    None => {
                        result.remove(key);
                    }
                }
            }
            Value::Array(patch_items) => {
                let current_items = match result.get(key) {
                    Some(Value::Array(items)) => items.as_slice(),
                    _ => &[],
                };
                let merged =
                    merge_list(current_items, patch_items, list_merge, child_context, mode)?;
                result.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                result.insert(key.clone(), scalar.clone());
            }
        }
    }

    if mode == Mode::Strategic {
        apply_list_directives(&mut result, patch, context)?;
        if let Some(retain) = patch.get(RETAIN_KEYS) {
            retain_keys(&mut result, patch, retain)?;
        }
    }
    Ok(Some(result))
}

/// `$deleteFromPrimitiveList/<list>` and `$setElementOrder/<list>`, applied
/// after the map's own fields have merged.
fn apply_list_directives(
    result: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    context: Context,
) -> Result<(), ApiError> {
    for (key, value) in patch {
        if let Some(list) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Value::Array(doomed) = value else {
                return Err(ApiError::bad_request(format!(
                    "invalid patch: {key} must be a list of values"
                )));
            };
            if let Some(Value::Array(items)) = result.get_mut(list) {
                items.retain(|item| !doomed.contains(item));
            }
        }
    }
    for (key, value) in patch {
        if let Some(list) = key.strip_prefix(SET_ELEMENT_ORDER) {
            let Value::Array(order) = value else {
                return Err(ApiError::bad_request(format!(
                    "invalid patch: {key} must be a list"
                )));
            };
            let (_, list_merge) = context.field(list);
            if let Some(Value::Array(items)) = result.get_mut(list) {
                reorder(items, order, list_merge);
            }
        }
    }
    Ok(())
}

/// Puts the elements named in `order` in that order, in the positions they
/// already occupy; elements not named keep their places.
fn reorder(items: &mut [Value], order: &[Value], list_merge: ListMerge) {
    let identity = |item: &Value| -> Option<Value> {
        match list_merge {
            ListMerge::ByKey(merge_key) => item.get(merge_key).cloned(),
            _ => Some(item.clone()),
        }
    };
    let order: Vec<Value> = order.iter().filter_map(identity).collect();
    let rank = |item: &Value| identity(item).and_then(|id| order.iter().position(|o| *o == id));
    let positions: Vec<usize> = (0..items.len())
        .filter(|&i| rank(&items[i]).is_some())
        .collect();
    let mut named: Vec<Value> = positions.iter().map(|&i| items[i].clone()).collect();
    named.sort_by_key(|item| rank(item).unwrap_or(usize::MAX));
    for (position, item) in positions.into_iter().zip(named) {
        items[position] = item;
    }
}

/// `$retainKeys`: the keys of the merged map not listed are cleared. The
/// patch may not set a key it does not retain (the API server's 422).
fn retain_keys(
    result: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    retain: &Value,
) -> Result<(), ApiError> {
    let Value::Array(retain) = retain else {
        return Err(ApiError::bad_request(
            "invalid patch: $retainKeys must be a list of strings",
        ));
    };
    let retained: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
    if retained.len() != retain.len() {
        return Err(ApiError::bad_request(
            "invalid patch: $retainKeys must be a list of strings",
        ));
    }
    let unretained_patch_key = patch.iter().any(|(key, value)| {
        !key.starts_with('$') && !value.is_null() && !retained.contains(&key.as_str())
    });
    if unretained_patch_key {
        return Err(unprocessable("patch content doesn't match retainKeys list"));
    }
    result.retain(|key, _| retained.contains(&key.as_str()));
    Ok(())
}

fn merge_list(
    current: &[Value],
    patch: &[Value],
    list_merge: ListMerge,
    element_context: Context,
    mode: Mode,
) -> Result<Vec<Value>, ApiError> {
    let is_directive = |item: &Value, directive: &str| {
        mode == Mode::Strategic
            && item.get(PATCH_DIRECTIVE).and_then(Value::as_str) == Some(directive)
    };
    // `{"$patch": "replace"}` as an element: the rest of the patch's list
    // is the new list, whatever the strategy.
    if patch.iter().any(|item| is_directive(item, "replace")) {
        let rest: Vec<Value> = patch
            .iter()
            .filter(|item| !is_directive(item, "replace"))
            .cloned()
            .collect();
        return merge_list(&[], &rest, list_merge, element_context, mode);
    }
    match list_merge {
        ListMerge::Replace => Ok(patch.to_vec()),
        ListMerge::Set => {
            let mut merged = current.to_vec();
            for item in patch {
                if item.is_object() || item.is_array() {
                    return Err(ApiError::bad_request(format!(
                        "invalid patch: a list of primitives cannot hold {item}"
                    )));
                }
                if !merged.contains(item) {
                    merged.push(item.clone());
                }
            }
            Ok(merged)
        }
        ListMerge::ByKey(merge_key) => {
            let mut merged = current.to_vec();
            for item in patch {
                let Some(patch_element) = item.as_object() else {
                    return Err(ApiError::bad_request(format!(
                        "invalid patch: the list merged by {merge_key} cannot hold {item}"
                    )));
                };
                let Some(key_value) = patch_element.get(merge_key).filter(|v| !v.is_null()) else {
                    // The API server answers this with a bare error, hence 500.
                    return Err(ApiError::internal(format!(
                        "map: {item} does not contain declared merge key: {merge_key}"
                    )));
                };
                let existing = merged
                    .iter()
                    .position(|candidate| candidate.get(merge_key) == Some(key_value));
                if is_directive(item, "delete") {
                    merged.retain(|candidate| candidate.get(merge_key) != Some(key_value));
                    continue;
                }
                let empty = Map::new();
                let base = existing
                    .and_then(|i| merged[i].as_object())
                    .unwrap_or(&empty);
                let element = merge_map(base, patch_element, element_context, mode)?;
                match (existing, element) {
                    (Some(i), Some(element)) => merged[i] = Value::Object(element),
                    (Some(i), None) => {
                        merged.remove(i);
                    }
                    (None, Some(element)) => merged.push(Value::Object(element)),
                    (None, None) => {}
                }
            }
            Ok(merged)
        }
    }
}

// ---------------------------------------------------------------------------
// Server-side apply
// ---------------------------------------------------------------------------

/// Metadata the server owns; applying it does not make a manager own it.
const UNOWNED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Merges an applied configuration into the current object (or returns it,
/// with its ownership recorded, when there is no current object) as
/// described in the module header.
pub fn server_side_apply(
    current: &Value,
    applied: &Value,
    kind: &str,
    manager: &str,
    force: bool,
) -> Result<Value, ApiError> {
    let mut applied = applied.clone();
    if let Some(metadata) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    let context = Context::Root(RootKind::of(kind));
    let applied_fields = owned_fields(&applied, context);
    let mut entries = managed_field_entries(current);

    let mut result = if current.is_null() {
        strip_nulls(&applied)
    } else {
        let conflicts = find_conflicts(current, &applied, &applied_fields, &entries, manager);
        if !conflicts.is_empty() && !force {
            return Err(apply_conflict(&conflicts));
        }
        for (other, path) in &conflicts {
            if let Some(entry) = entries
                .iter_mut()
                .find(|e| e.manager == *other && e.is_apply)
            {
                remove_owned_path(&mut entry.fields, path);
            }
        }
        let empty = Map::new();
        let current_map = current.as_object().unwrap_or(&empty);
        let applied_map = applied.as_object().unwrap_or(&empty);
        let merged = merge_map(current_map, applied_map, context, Mode::Apply)?.unwrap_or_default();
        let mut merged = Value::Object(merged);
        if let Some(previous) = entries.iter().find(|e| e.manager == manager && e.is_apply) {
            let others: Vec<&Map<String, Value>> = entries
                .iter()
                .filter(|e| e.manager != manager && e.is_apply)
                .map(|e| &e.fields)
                .collect();
            remove_dropped_fields(&mut merged, &previous.fields, &applied_fields, &others);
        }
        merged
    };

    let api_version = applied.get("apiVersion").cloned().unwrap_or(Value::Null);
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.is_apply)
    {
        Some(entry) => {
            entry.fields = applied_fields;
            entry.api_version = api_version;
        }
        None => entries.push(ManagedEntry {
            manager: manager.to_string(),
            is_apply: true,
            api_version,
            fields: applied_fields,
            raw: Map::new(),
        }),
    }
    if let Some(object) = result.as_object_mut() {
        let metadata = object
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert(
                "managedFields".into(),
                Value::Array(entries.into_iter().map(ManagedEntry::into_value).collect()),
            );
        }
    }
    Ok(result)
}

/// One `metadata.managedFields` entry, with its `fieldsV1` unpacked.
struct ManagedEntry {
    manager: String,
    is_apply: bool,
    api_version: Value,
    fields: Map<String, Value>,
    /// The entry as stored, so fields this module does not manage survive.
    raw: Map<String, Value>,
}

impl ManagedEntry {
    fn into_value(self) -> Value {
        let mut entry = self.raw;
        entry.insert("manager".into(), Value::String(self.manager));
        entry.insert(
            "operation".into(),
            Value::String(if self.is_apply { "Apply" } else { "Update" }.into()),
        );
        if !self.api_version.is_null() {
            entry.insert("apiVersion".into(), self.api_version);
        }
        entry.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        entry.insert("fieldsV1".into(), Value::Object(self.fields));
        Value::Object(entry)
    }
}

fn managed_field_entries(obj: &Value) -> Vec<ManagedEntry> {
    let Some(entries) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(Value::as_object)
        .map(|raw| ManagedEntry {
            manager: raw
                .get("manager")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            is_apply: raw.get("operation").and_then(Value::as_str) == Some("Apply"),
            api_version: raw.get("apiVersion").cloned().unwrap_or(Value::Null),
            fields: raw
                .get("fieldsV1")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            raw: raw.clone(),
        })
        .collect()
}

/// Removes `null`s, which in applied configuration mean "not set".
fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// The fields an applied configuration sets, in `FieldsV1` form:
/// `f:<field>` for map fields, `k:{"name":"x"}` for elements of keyed lists,
/// `v:<json>` for members of set lists, `{}` for a leaf, and `.` marking
/// that a list element itself is owned.
fn owned_fields(applied: &Value, context: Context) -> Map<String, Value> {
    let mut fields = Map::new();
    let Some(object) = applied.as_object() else {
        return fields;
    };
    for (key, value) in object {
        if value.is_null()
            || (matches!(context, Context::Root(_)) && (key == "apiVersion" || key == "kind"))
        {
            continue;
        }
        if context == Context::ObjectMeta && UNOWNED_METADATA.contains(&key.as_str()) {
            continue;
        }
        let (child_context, list_merge) = context.field(key);
        let child = match (value, list_merge) {
            (Value::Object(map), _) => {
                let owned = owned_fields(value, child_context);
                // A map whose fields are all server-owned (`metadata` with
                // just a name) is not owned itself; an empty map (`emptyDir:
                // {}`) is a leaf.
                if owned.is_empty() && !map.is_empty() {
                    continue;
                }
                owned
            }
            (Value::Array(items), ListMerge::ByKey(merge_key)) => {
                let mut elements = Map::new();
                for item in items {
                    let Some(key_value) = item.get(merge_key) else {
                        continue;
                    };
                    let mut element = owned_fields(item, child_context);
                    element.insert(".".into(), Value::Object(Map::new()));
                    elements.insert(element_key(merge_key, key_value), Value::Object(element));
                }
                elements
            }
            (Value::Array(items), ListMerge::Set) => items
                .iter()
                .map(|item| (format!("v:{item}"), Value::Object(Map::new())))
                .collect(),
            _ => Map::new(),
        };
        fields.insert(format!("f:{key}"), Value::Object(child));
    }
    fields
}

fn element_key(merge_key: &str, key_value: &Value) -> String {
    let mut key = Map::new();
    key.insert(merge_key.to_string(), key_value.clone());
    format!("k:{}", Value::Object(key))
}

/// Where an owned-field key points in an object: a map field, a keyed list
/// element, or a set member.
enum FieldStep {
    Field(String),
    Element(Map<String, Value>),
    Member(Value),
}

fn parse_field_step(key: &str) -> Option<FieldStep> {
    if let Some(field) = key.strip_prefix("f:") {
        return Some(FieldStep::Field(field.to_string()));
    }
    if let Some(json) = key.strip_prefix("k:") {
        return serde_json::from_str::<Map<String, Value>>(json)
            .ok()
            .map(FieldStep::Element);
    }
    if let Some(json) = key.strip_prefix("v:") {
        return serde_json::from_str::<Value>(json)
            .ok()
            .map(FieldStep::Member);
    }
    None
}

fn element_matches(item: &Value, key: &Map<String, Value>) -> bool {
    key.iter().all(|(k, v)| item.get(k) == Some(v))
}

fn step_into<'a>(value: &'a Value, step: &FieldStep) -> Option<&'a Value> {
    match step {
        FieldStep::Field(field) => value.get(field),
        FieldStep::Element(key) => value
            .as_array()?
            .iter()
            .find(|item| element_matches(item, key)),
        FieldStep::Member(member) => value.as_array()?.iter().find(|item| *item == member),
    }
}

/// Removes what `previous` owned and `applied` no longer does, unless one of
/// `others` owns it too.
fn remove_dropped_fields(
    value: &mut Value,
    previous: &Map<String, Value>,
    applied: &Map<String, Value>,
    others: &[&Map<String, Value>],
) {
    let empty = Map::new();
    for (key, previous_child) in previous {
        let Some(step) = parse_field_step(key) else {
            continue;
        };
        let others_child: Vec<&Map<String, Value>> = others
            .iter()
            .filter_map(|o| o.get(key).and_then(Value::as_object))
            .collect();
        let applied_child = applied.get(key).and_then(Value::as_object);
        if applied_child.is_none() && others_child.is_empty() {
            remove_step(value, &step);
            continue;
        }
        let previous_child = previous_child.as_object().unwrap_or(&empty);
        if previous_child.is_empty() {
            continue;
        }
        if let Some(child) = step_into_mut(value, &step) {
            remove_dropped_fields(
                child,
                previous_child,
                applied_child.unwrap_or(&empty),
                &others_child,
            );
        }
    }
}

fn step_into_mut<'a>(value: &'a mut Value, step: &FieldStep) -> Option<&'a mut Value> {
    match step {
        FieldStep::Field(field) => value.get_mut(field),
        FieldStep::Element(key) => value
            .as_array_mut()?
            .iter_mut()
            .find(|item| element_matches(item, key)),
        FieldStep::Member(_) => None,
    }
}

fn remove_step(value: &mut Value, step: &FieldStep) {
    match (step, value) {
        (FieldStep::Field(field), Value::Object(map)) => {
            map.remove(field);
        }
        (FieldStep::Element(key), Value::Array(items)) => {
            items.retain(|item| !element_matches(item, key))
        }
        (FieldStep::Member(member), Value::Array(items)) => items.retain(|item| item != member),
        _ => {}
    }
}

/// A field another applier owns, as (manager, path of owned-field keys).
type Conflict = (String, Vec<String>);

/// Leaves of the applied configuration that another Apply manager owns and
/// whose applied value differs from the current one.
fn find_conflicts(
    current: &Value,
    applied: &Value,
    applied_fields: &Map<String, Value>,
    entries: &[ManagedEntry],
    manager: &str,
) -> Vec<Conflict> {
    let mut conflicts = Vec::new();
    for entry in entries
        .iter()
        .filter(|e| e.is_apply && e.manager != manager)
    {
        let mut path = Vec::new();
        collect_conflicts(
            current,
            applied,
            applied_fields,
            &entry.fields,
            &mut path,
            &mut |path| {
                conflicts.push((entry.manager.clone(), path.to_vec()));
            },
        );
    }
    conflicts
}

fn collect_conflicts(
    current: &Value,
    applied: &Value,
    applied_fields: &Map<String, Value>,
    other_fields: &Map<String, Value>,
    path: &mut Vec<String>,
    report: &mut dyn FnMut(&[String]),
) {
    for (key, applied_child) in applied_fields {
        let Some(other_child) = other_fields.get(key).and_then(Value::as_object) else {
            continue;
        };
        let Some(step) = parse_field_step(key) else {
            continue;
        };
        let applied_child = applied_child.as_object();
        let current_value = step_into(current, &step);
        let applied_value = step_into(applied, &step);
        path.push(key.clone());
        // Maps are never leaves: their fields are compared one by one.
        let is_leaf =
            applied_value.is_none_or(|v| !v.is_object()) && applied_child.is_none_or(Map::is_empty);
        if is_leaf {
            if current_value != applied_value {
                report(path);
            }
        } else if let (Some(current_value), Some(applied_value), Some(applied_child)) =
            (current_value, applied_value, applied_child)
        {
            collect_conflicts(
                current_value,
                applied_value,
                applied_child,
                other_child,
                path,
                report,
            );
        }
        path.pop();
    }
}

fn remove_owned_path(fields: &mut Map<String, Value>, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        fields.remove(first);
        return;
    }
    if let Some(Value::Object(child)) = fields.get_mut(first) {
        remove_owned_path(child, rest);
        if child.is_empty() {
            fields.remove(first);
        }
    }
}

/// The API server's 409 for apply conflicts: `Apply failed with 1
/// conflict: conflict with "kubectl": .spec.replicas`.
fn apply_conflict(conflicts: &[Conflict]) -> ApiError {
    let described: Vec<String> = conflicts
        .iter()
        .map(|(manager, path)| format!("conflict with \"{manager}\": {}", render_field_path(path)))
        .collect();
    let count = conflicts.len();
    let noun = if count == 1 { "conflict" } else { "conflicts" };
    ApiError {
        code: 409,
        reason: "Conflict",
        message: format!("Apply failed with {count} {noun}: {}", described.join("\n")),
        retry_after: None,
        details: None,
        causes: None,
    }
}

/// `.spec.template.spec.containers[name="app"].image` from owned-field keys.
fn render_field_path(path: &[String]) -> String {
    let mut rendered = String::new();
    for key in path {
        match parse_field_step(key) {
            Some(FieldStep::Field(field)) => {
                rendered.push('.');
                rendered.push_str(&field);
            }
            Some(FieldStep::Element(element)) => {
                let parts: Vec<String> = element.iter().map(|(k, v)| format!("{k}={v}")).collect();
                rendered.push_str(&format!("[{}]", parts.join(",")));
            }
            Some(FieldStep::Member(member)) => rendered.push_str(&format!("[={member}]")),
            None => rendered.push_str(key),
        }
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(patch_type: PatchType, current: &Value, body: Value, kind: &str) -> Value {
        let body = body.to_string();
        match apply_patch(patch_type, current, body.as_bytes(), kind, None, false) {
            Ok(result) => result,
            Err(e) => panic!("patch should apply: {e}"),
        }
    }

    fn strategic(current: &Value, body: Value, kind: &str) -> Value {
        patched(PatchType::Strategic, current, body, kind)
    }

    fn apply(current: &Value, yaml: &str, manager: &str, force: bool) -> Result<Value, ApiError> {
        apply_patch(
            PatchType::Apply,
            current,
            yaml.as_bytes(),
            "Deployment",
            Some(manager),
            force,
        )
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7",
                          "labels": {"app": "web", "istio-injection": "enabled"}, "finalizers": ["a"]},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "shop/web:1",
                             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                             "ports": [{"containerPort": 8080, "name": "http"}]},
                            {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0"}
                        ],
                        "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}],
                        "volumes": [{"name": "data", "emptyDir": {}}]
                    }
                }
            }
        })
    }

    fn containers(obj: &Value) -> &Vec<Value> {
        obj.pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .expect("containers")
    }

    #[test]
    fn content_types_map_to_patch_types_ignoring_parameters() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json; charset=utf-8"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json"),
            Some(PatchType::Strategic)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
        for t in [
            PatchType::Merge,
            PatchType::Json,
            PatchType::Strategic,
            PatchType::Apply,
        ] {
            assert_eq!(PatchType::from_content_type(t.content_type()), Some(t));
        }
    }

    #[test]
    fn a_merge_patch_sets_and_deletes_keys_and_replaces_lists() {
        let result = patched(
            PatchType::Merge,
            &deployment(),
            json!({"metadata": {"labels": {"istio-injection": null, "istio.io/rev": "1-23"}},
                   "spec": {"template": {"spec": {"tolerations": []}}}}),
            "Deployment",
        );
        assert_eq!(
            result["metadata"]["labels"],
            json!({"app": "web", "istio.io/rev": "1-23"})
        );
        assert_eq!(
            result.pointer("/spec/template/spec/tolerations"),
            Some(&json!([]))
        );
        assert_eq!(containers(&result).len(), 2);
    }

    #[test]
    fn the_patch_kubectl_label_sends_moves_a_namespace_to_a_revision() {
        // Recorded from kubectl 1.32: `kubectl label ns shop istio-injection-
        // istio.io/rev=1-23` sends this JSON merge patch (fieldManager
        // kubectl-label), null removing a label.
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": "shop", "labels": {"istio-injection": "enabled", "team": "a"}}});
        let result = patched(
            PatchType::Merge,
            &namespace,
            json!({"metadata": {"labels": {"istio-injection": null, "istio.io/rev": "1-23"}}}),
            "Namespace",
        );
        assert_eq!(
            result["metadata"]["labels"],
            json!({"team": "a", "istio.io/rev": "1-23"})
        );
    }

    #[test]
    fn the_patch_kubectl_annotate_sends_sets_and_removes_annotations() {
        // kubectl 1.32 annotate sends a JSON merge patch of
        // metadata.annotations, like label.
        let pod = json!({"metadata": {"name": "p", "annotations": {"old": "x", "keep": "y"}}});
        let result = patched(
            PatchType::Merge,
            &pod,
            json!({"metadata": {"annotations": {"old": null, "sidecar.istio.io/inject": "false"}}}),
            "Pod",
        );
        assert_eq!(
            result["metadata"]["annotations"],
            json!({"keep": "y", "sidecar.istio.io/inject": "false"})
        );
    }

    #[test]
    fn the_patch_kubectl_scale_sends_sets_the_replicas_of_a_scale() {
        // kubectl 1.32 scale sends `{"spec":{"replicas":5}}` as a JSON merge
        // patch to the `/scale` subresource.
        let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                           "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7"},
                           "spec": {"replicas": 3}, "status": {"replicas": 3, "selector": "app=web"}});
        let result = patched(
            PatchType::Merge,
            &scale,
            json!({"spec": {"replicas": 5}}),
            "Scale",
        );
        assert_eq!(result["spec"]["replicas"], json!(5));
        assert_eq!(result["status"]["replicas"], json!(3));
    }

    #[test]
    fn a_resource_version_in_a_patch_body_is_kept_for_the_caller_to_check() {
        let result = patched(
            PatchType::Merge,
            &deployment(),
            json!({"metadata": {"resourceVersion": "3", "labels": {"x": "y"}}}),
            "Deployment",
        );
        assert_eq!(result["metadata"]["resourceVersion"], json!("3"));
        let result = strategic(
            &deployment(),
            json!({"metadata": {"resourceVersion": "4"}}),
            "Deployment",
        );
        assert_eq!(result["metadata"]["resourceVersion"], json!("4"));
    }

    #[test]
    fn a_json_patch_applies_its_operations_in_order() {
        let result = patched(
            PatchType::Json,
            &deployment(),
            json!([
                {"op": "replace", "path": "/spec/replicas", "value": 1},
                {"op": "add", "path": "/metadata/labels/istio.io~1rev", "value": "1-23"},
                {"op": "remove", "path": "/metadata/labels/istio-injection"},
                {"op": "test", "path": "/spec/replicas", "value": 1}
            ]),
            "Deployment",
        );
        assert_eq!(result["spec"]["replicas"], json!(1));
        assert_eq!(
            result["metadata"]["labels"],
            json!({"app": "web", "istio.io/rev": "1-23"})
        );
    }

    #[test]
    fn a_failed_json_patch_test_is_unprocessable_and_changes_nothing() {
        let body = json!([{"op": "replace", "path": "/spec/replicas", "value": 9},
                          {"op": "test", "path": "/spec/replicas", "value": 3}])
        .to_string();
        let error = apply_patch(
            PatchType::Json,
            &deployment(),
            body.as_bytes(),
            "Deployment",
            None,
            false,
        )
        .expect_err("the test fails");
        assert_eq!((error.code, error.reason), (422, "Invalid"));
    }

    #[test]
    fn a_json_patch_to_a_missing_path_is_unprocessable() {
        let body = br#"[{"op": "remove", "path": "/spec/nothing"}]"#;
        let error = apply_patch(
            PatchType::Json,
            &deployment(),
            body,
            "Deployment",
            None,
            false,
        )
        .expect_err("nothing to remove");
        assert_eq!(error.code, 422);
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        for patch_type in [PatchType::Merge, PatchType::Json, PatchType::Strategic] {
            let error = apply_patch(
                patch_type,
                &deployment(),
                b"{not json",
                "Deployment",
                None,
                false,
            )
            .expect_err("malformed");
            assert_eq!(
                (error.code, error.reason),
                (400, "BadRequest"),
                "{patch_type:?}"
            );
        }
        let error = apply_patch(
            PatchType::Json,
            &deployment(),
            br#"{"op": "add"}"#,
            "Deployment",
            None,
            false,
        )
        .expect_err("a JSON patch is a list");
        assert_eq!(error.code, 400);
        let error = apply_patch(
            PatchType::Apply,
            &deployment(),
            b"a: [b",
            "Deployment",
            Some("m"),
            false,
        )
        .expect_err("malformed YAML");
        assert_eq!(error.code, 400);
    }

    #[test]
    fn a_merge_patch_that_is_not_an_object_is_unprocessable() {
        let error = apply_patch(
            PatchType::Merge,
            &deployment(),
            b"[1]",
            "Deployment",
            None,
            false,
        )
        .expect_err("not an object");
        assert_eq!(error.code, 422);
    }

    #[test]
    fn patching_one_container_image_keeps_the_other_containers() {
        let result = strategic(
            &deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.23.0"}
            ]}}}}),
            "Deployment",
        );
        let containers = containers(&result);
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["image"], json!("shop/web:1"));
        assert_eq!(containers[0]["env"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            containers[1]["image"],
            json!("docker.io/istio/proxyv2:1.23.0")
        );
    }

    #[test]
    fn a_new_container_is_appended() {
        let result = strategic(
            &deployment(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "debug", "image": "busybox"}]}}}}),
            "Deployment",
        );
        let names: Vec<&Value> = containers(&result).iter().map(|c| &c["name"]).collect();
        assert_eq!(
            names,
            [&json!("app"), &json!("istio-proxy"), &json!("debug")]
        );
    }

    #[test]
    fn env_variables_merge_by_name_and_null_removes_a_field() {
        let result = strategic(
            &deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}], "ports": null}
            ]}}}}),
            "Deployment",
        );
        let app = &containers(&result)[0];
        assert_eq!(
            app["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
        );
        assert!(app.get("ports").is_none());
        assert_eq!(app["image"], json!("shop/web:1"));
    }

    #[test]
    fn patch_delete_removes_one_element_of_a_keyed_list() {
        let result = strategic(
            &deployment(),
            json!({"spec": {"template": {"spec": {
                "containers": [{"name": "istio-proxy", "$patch": "delete"}],
                "volumes": [{"name": "data", "$patch": "delete"}]
            }}}}),
            "Deployment",
        );
        assert_eq!(containers(&result).len(), 1);
        assert_eq!(containers(&result)[0]["name"], json!("app"));
        assert_eq!(
            result.pointer("/spec/template/spec/volumes"),
            Some(&json!([]))
        );
    }

    #[test]
    fn null_deletes_a_key_at_any_depth() {
        let result = strategic(
            &deployment(),
            json!({"metadata": {"labels": {"istio-injection": null}}, "spec": {"template": {"spec": {"volumes": null}}}}),
            "Deployment",
        );
        assert_eq!(result["metadata"]["labels"], json!({"app": "web"}));
        assert!(result.pointer("/spec/template/spec/volumes").is_none());
    }

    #[test]
    fn service_ports_merge_by_port_and_container_ports_by_container_port() {
        let service = json!({"kind": "Service", "metadata": {"name": "gw"}, "spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "https", "port": 443, "targetPort": 8443}
        ]}});
        let result = strategic(
            &service,
            json!({"spec": {"ports": [{"port": 443, "targetPort": 9443}]}}),
            "Service",
        );
        assert_eq!(
            result["spec"]["ports"],
            json!([{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443, "targetPort": 9443}])
        );

        let result = strategic(
            &deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "ports": [{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 15090}]}
            ]}}}}),
            "Deployment",
        );
        assert_eq!(
            containers(&result)[0]["ports"],
            json!([{"containerPort": 8080, "name": "http", "protocol": "TCP"}, {"containerPort": 15090}])
        );
    }

    #[test]
    fn a_toleration_list_has_no_merge_key_and_is_replaced() {
        let result = strategic(
            &deployment(),
            json!({"spec": {"template": {"spec": {"tolerations": [{"key": "c", "operator": "Exists"}]}}}}),
            "Deployment",
        );
        assert_eq!(
            result.pointer("/spec/template/spec/tolerations"),
            Some(&json!([{"key": "c", "operator": "Exists"}]))
        );
    }

    #[test]
    fn the_rollout_restart_patch_adds_an_annotation_to_the_pod_template() {
        // kubectl 1.32 rollout restart sends this as a strategic merge patch.
        let body = json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2025-01-02T03:04:05Z"
        }}}}});
        let result = strategic(&deployment(), body, "Deployment");
        assert_eq!(
            result.pointer("/spec/template/metadata"),
            Some(&json!({"labels": {"app": "web"},
                         "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-02T03:04:05Z"}}))
        );
        assert_eq!(
            result["spec"]["template"]["spec"],
            deployment()["spec"]["template"]["spec"]
        );
    }

    #[test]
    fn a_pod_spec_at_the_top_of_a_pod_merges_containers_by_name() {
        let pod = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}
        ]}});
        let result = strategic(
            &pod,
            json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
            "Pod",
        );
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])
        );
    }

    #[test]
    fn patch_replace_replaces_a_map_or_a_list() {
        let result = strategic(
            &deployment(),
            json!({"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "web2"}}}}}),
            "Deployment",
        );
        assert_eq!(
            result["spec"]["template"],
            json!({"metadata": {"labels": {"app": "web2"}}})
        );

        let result = strategic(
            &deployment(),
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}}}),
            "Deployment",
        );
        assert_eq!(
            containers(&result),
            &vec![json!({"name": "only", "image": "x"})]
        );
    }

    #[test]
    fn patch_delete_on_a_map_removes_it() {
        let result = strategic(
            &deployment(),
            json!({"spec": {"selector": {"$patch": "delete"}}}),
            "Deployment",
        );
        assert!(result["spec"].get("selector").is_none());
    }

    #[test]
    fn finalizers_merge_as_a_set_and_delete_from_primitive_list_removes() {
        let result = strategic(
            &deployment(),
            json!({"metadata": {"finalizers": ["b", "a"]}}),
            "Deployment",
        );
        assert_eq!(result["metadata"]["finalizers"], json!(["a", "b"]));
        let result = strategic(
            &result,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            "Deployment",
        );
        assert_eq!(result["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn set_element_order_reorders_and_is_never_stored() {
        let result = strategic(
            &deployment(),
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "istio-proxy"}, {"name": "app"}],
                "containers": [{"name": "app", "image": "shop/web:2"}]
            }}}}),
            "Deployment",
        );
        let names: Vec<&Value> = containers(&result).iter().map(|c| &c["name"]).collect();
        assert_eq!(names, [&json!("istio-proxy"), &json!("app")]);
        assert!(!result.to_string().contains('$'));
    }

    #[test]
    fn retain_keys_clears_the_keys_not_listed() {
        let current = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let result = strategic(
            &current,
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            "Deployment",
        );
        assert_eq!(result["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn directives_inside_new_elements_are_not_stored() {
        let result = strategic(
            &json!({"kind": "Pod", "spec": {}}),
            json!({"spec": {"containers": [{"name": "a", "$patch": "merge", "env": [{"name": "X", "value": "1", "$patch": "merge"}]}]}}),
            "Pod",
        );
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "a", "env": [{"name": "X", "value": "1"}]}])
        );
    }

    #[test]
    fn webhooks_merge_by_name_and_conditions_by_type() {
        let config = json!({"kind": "MutatingWebhookConfiguration", "webhooks": [
            {"name": "rev.namespace.sidecar-injector.istio.io", "failurePolicy": "Fail"},
            {"name": "rev.object.sidecar-injector.istio.io", "failurePolicy": "Fail"}
        ]});
        let result = strategic(
            &config,
            json!({"webhooks": [{"name": "rev.object.sidecar-injector.istio.io", "failurePolicy": "Ignore"}]}),
            "MutatingWebhookConfiguration",
        );
        assert_eq!(result["webhooks"][0]["failurePolicy"], json!("Fail"));
        assert_eq!(result["webhooks"][1]["failurePolicy"], json!("Ignore"));

        let pod = json!({"kind": "Pod", "status": {"conditions": [
            {"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}
        ]}});
        let result = strategic(
            &pod,
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            "Pod",
        );
        assert_eq!(
            result["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
        );
    }

    #[test]
    fn an_element_without_its_merge_key_is_rejected() {
        let body =
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}).to_string();
        let error = apply_patch(
            PatchType::Strategic,
            &deployment(),
            body.as_bytes(),
            "Deployment",
            None,
            false,
        )
        .expect_err("no name");
        assert!(
            error
                .message
                .contains("does not contain declared merge key: name"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_strategic_merge_patch_of_a_custom_resource_is_unsupported() {
        let body = br#"{"spec": {"x": 1}}"#;
        let error = apply_patch(
            PatchType::Strategic,
            &json!({"spec": {}}),
            body,
            "Gateway",
            None,
            false,
        )
        .expect_err("custom resources take no strategic merge");
        assert_eq!((error.code, error.reason), (415, "UnsupportedMediaType"));
        let result = apply_patch(
            PatchType::Merge,
            &json!({"spec": {}}),
            body,
            "Gateway",
            None,
            false,
        )
        .expect("a merge patch is fine");
        assert_eq!(result["spec"]["x"], json!(1));
    }

    #[test]
    fn an_apply_merges_into_the_object_rather_than_replacing_it() {
        let yaml = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels:
    istio.io/rev: "1-23"
spec:
  template:
    spec:
      containers:
      - name: istio-proxy
        image: docker.io/istio/proxyv2:1.23.0
"#;
        let result = apply(&deployment(), yaml, "mesh-upgrade", false).expect("applies");
        assert_eq!(result["spec"]["replicas"], json!(3));
        assert_eq!(result["metadata"]["labels"]["app"], json!("web"));
        assert_eq!(result["metadata"]["labels"]["istio.io/rev"], json!("1-23"));
        let containers = containers(&result);
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["image"], json!("shop/web:1"));
        assert_eq!(
            containers[1]["image"],
            json!("docker.io/istio/proxyv2:1.23.0")
        );
        let entry = &result["metadata"]["managedFields"][0];
        assert_eq!(entry["manager"], json!("mesh-upgrade"));
        assert_eq!(entry["operation"], json!("Apply"));
        assert!(
            entry["fieldsV1"]["f:metadata"]["f:labels"]
                .get("f:istio.io/rev")
                .is_some()
        );
    }

    #[test]
    fn the_body_kubectl_apply_server_side_sends_is_json_and_merges() {
        // Recorded from kubectl 1.32 `apply --server-side`: JSON under the
        // apply-patch+yaml content type, fieldManager=kubectl, force=false.
        let body = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"replicas":4,"template":{"spec":{"containers":[{"image":"shop/web:2","name":"app"}]}}}}"#;
        let result = apply_patch(
            PatchType::Apply,
            &deployment(),
            body,
            "Deployment",
            Some("kubectl"),
            false,
        )
        .expect("applies");
        assert_eq!(result["spec"]["replicas"], json!(4));
        let images: Vec<&Value> = containers(&result).iter().map(|c| &c["image"]).collect();
        assert_eq!(
            images,
            [
                &json!("shop/web:2"),
                &json!("docker.io/istio/proxyv2:1.22.0")
            ]
        );
        assert_eq!(
            result["metadata"]["labels"]["istio-injection"],
            json!("enabled")
        );
    }

    #[test]
    fn an_apply_with_no_current_object_returns_the_applied_object() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  creationTimestamp: null\ndata:\n  a: b\n";
        let result = apply_patch(
            PatchType::Apply,
            &Value::Null,
            yaml.as_bytes(),
            "ConfigMap",
            Some("m"),
            false,
        )
        .expect("applies");
        assert_eq!(result["data"], json!({"a": "b"}));
        assert_eq!(result["metadata"]["name"], json!("c"));
        assert!(result["metadata"].get("creationTimestamp").is_none());
        assert_eq!(
            result["metadata"]["managedFields"][0]["manager"],
            json!("m")
        );
    }

    #[test]
    fn null_in_an_apply_does_not_delete() {
        let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  creationTimestamp: null\n  labels:\n    app: null\n";
        let result = apply(&deployment(), yaml, "m", false).expect("applies");
        assert_eq!(result["metadata"]["labels"]["app"], json!("web"));
    }

    #[test]
    fn a_field_the_manager_stops_applying_is_removed() {
        let first = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    a: '1'\n    b: '2'\n";
        let second = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    a: '1'\n";
        let once = apply(&deployment(), first, "m", false).expect("applies");
        let twice = apply(&once, second, "m", false).expect("applies again");
        let labels = &twice["metadata"]["labels"];
        assert_eq!(labels.get("b"), None);
        assert_eq!(labels["a"], json!("1"));
        // Labels the manager never applied stay.
        assert_eq!(labels["app"], json!("web"));
        assert_eq!(
            twice["metadata"]["managedFields"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn a_dropped_container_is_removed_only_if_no_other_applier_owns_it() {
        let both = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: shop/web:1\n      - name: extra\n        image: x\n";
        let one = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: shop/web:1\n";
        let applied = apply(&deployment(), both, "m", false).expect("applies");
        let dropped = apply(&applied, one, "m", false).expect("applies");
        let names: Vec<&Value> = containers(&dropped).iter().map(|c| &c["name"]).collect();
        assert_eq!(names, [&json!("app"), &json!("istio-proxy")]);

        let shared = apply(&applied, both, "other", false).expect("same values never conflict");
        let kept = apply(&shared, one, "m", false).expect("applies");
        assert_eq!(containers(&kept).len(), 3);
    }

    #[test]
    fn applying_a_different_value_to_another_appliers_field_conflicts_unless_forced() {
        let three =
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n";
        let five =
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 5\n";
        let owned = apply(&deployment(), three, "kubectl", false).expect("applies");
        let error = apply(&owned, five, "mesh-upgrade", false).expect_err("conflicts");
        assert_eq!((error.code, error.reason), (409, "Conflict"));
        assert_eq!(
            error.message,
            "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"
        );
        let forced = apply(&owned, five, "mesh-upgrade", true).expect("force takes ownership");
        assert_eq!(forced["spec"]["replicas"], json!(5));
        let kubectl_entry = forced["metadata"]["managedFields"]
            .as_array()
            .and_then(|entries| entries.iter().find(|e| e["manager"] == json!("kubectl")))
            .expect("kubectl still manages something or an empty set");
        assert!(
            kubectl_entry["fieldsV1"]
                .pointer("/f:spec/f:replicas")
                .is_none()
        );
    }

    #[test]
    fn an_apply_needs_a_field_manager_and_a_kind() {
        let yaml = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";
        let error = apply_patch(
            PatchType::Apply,
            &deployment(),
            yaml,
            "Deployment",
            None,
            false,
        )
        .expect_err("no manager");
        assert_eq!(error.code, 422);
        let error = apply_patch(
            PatchType::Apply,
            &deployment(),
            b"metadata:\n  name: web\n",
            "Deployment",
            Some("m"),
            false,
        )
        .expect_err("no kind");
        assert_eq!(error.code, 400);
    }
}
