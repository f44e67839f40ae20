//! Requests on objects: get, list, watch, create, update, patch, delete, and
//! the `status`, `scale`, `log` and `eviction` subresources.
//!
//! Each handler reads the request, takes the world lock for the read or
//! write itself, and answers what the API server would: the object (201 on
//! create), a `<Kind>List` or a Table, or a `Status`. Writes go through
//! [`World`] so admission, generations, optimistic concurrency, dry runs and
//! garbage collection behave as for every other writer.
//!
//! A `<Kind>List` is protobuf when the client prefers it (kubectl's typed
//! clients do), its kind has a protobuf schema and every item encodes;
//! otherwise JSON (`ListFormat::negotiate`). Objects (GET), watches and
//! Tables are always JSON.

use std::sync::Arc;

use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::auth::{User, forbidden};
use crate::error::{ApiError, ApiResult};
use crate::faults::FaultRequest;
use crate::patch::{PatchType, apply_patch};
use crate::resources::{self, Resource};
use crate::store::{Obj, Stored};
use crate::world::{World, WriteOptions, metadata_mut};

use super::list::{self, Selectors};
use super::route::ResourcePath;
use super::table::{IncludeObject, table};
use super::watch::{WatchRequest, watch};
use super::{ApiRequest, Body, Shared, bytes_response, json_response, lock, not_found_path};

/// The verb of a resource request, as RBAC names it.
fn verb(method: &Method, path: &ResourcePath, watching: bool) -> ApiResult<&'static str> {
    let named = path.name.is_some();
    Ok(match (method.as_str(), named) {
        ("GET", _) if watching => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", false) => "create",
        ("POST", true) if path.subresource.is_some() => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method})"
            )));
        }
    })
}

/// Finds the kind a path names: builtin first, then the Gateway API's kinds,
/// then kinds registered at run time. A kind the cluster does not serve (a
/// custom kind whose CRD is not installed) is not found, as a path under a
/// group without its CRD is.
fn resolve(world: &World, path: &ResourcePath) -> Option<&'static Resource> {
    resources::lookup(&path.group, &path.version, &path.plural)
        .or_else(|| resources::lookup_custom(&path.group, &path.version, &path.plural))
        .or_else(|| {
            world.store.kinds().find(|r| {
                r.group == path.group && r.version == path.version && r.plural == path.plural
            })
        })
        .filter(|r| world.serves(r))
}

/// Whether kubectl asked for a Table, and what its rows should carry.
fn table_request(request: &ApiRequest) -> Option<IncludeObject> {
    request
        .accept
        .contains("as=Table")
        .then(|| IncludeObject::parse(request.query.get("includeObject")))
}

/// How a LIST is answered, from its `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListFormat {
    /// A `meta.k8s.io` Table (`kubectl get`).
    Table,
    Json,
    /// Kubernetes' protobuf; `or_json` when the client takes JSON too, which
    /// is then the answer for a page that cannot be encoded.
    Protobuf {
        or_json: bool,
    },
}

impl ListFormat {
    /// The API server's negotiation, for the two encodings mesh-sim has: the
    /// media types by `q` (0 is not acceptable), equal ones in the client's
    /// order; protobuf if it comes before any JSON type (`application/json`,
    /// `application/*`, `*/*`). client-go's typed clients send
    /// `application/vnd.kubernetes.protobuf, application/json`; kube-rs and
    /// kubectl's dynamic clients `application/json`. Anything else (no
    /// header, only types mesh-sim does not serve) is answered in JSON, as
    /// mesh-sim always has.
    fn negotiate(accept: &str) -> Self {
        if accept.contains("as=Table") {
            return ListFormat::Table;
        }
        let mut ranked: Vec<(&str, bool, f32)> = accept
            .split(',')
            .filter_map(|entry| {
                let mut parts = entry.split(';').map(str::trim);
                let media_type = parts.next().filter(|t| !t.is_empty())?;
                let (mut q, mut converted) = (1.0f32, false);
                for parameter in parts {
                    let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
                    match key.trim() {
                        "q" => q = value.trim().parse().unwrap_or(1.0),
                        // `as=PartialObjectMetadataList` and the like: another
                        // kind than the list, which mesh-sim has no protobuf for.
                        "as" => converted = true,
                        _ => {}
                    }
                }
                (q > 0.0).then_some((media_type, converted, q))
            })
            .collect();
        ranked.sort_by(|a, b| b.2.total_cmp(&a.2));
        let protobuf = ranked.iter().position(|(t, converted, _)| {
            !converted && t.eq_ignore_ascii_case(super::proto::MEDIA_TYPE)
        });
        let json = ranked.iter().position(|(t, _, _)| {
            ["application/json", "application/*", "*/*"]
                .iter()
                .any(|j| t.eq_ignore_ascii_case(j))
        });
        match (protobuf, json) {
            (Some(p), json) if json.is_none_or(|j| p < j) => ListFormat::Protobuf {
                or_json: json.is_some(),
            },
            _ => ListFormat::Json,
        }
    }
}

fn write_options(request: &ApiRequest) -> ApiResult<WriteOptions> {
    let dry_run = match request.query.get("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}: supported values: \"All\""
            )));
        }
    };
    Ok(WriteOptions {
        dry_run,
        field_manager: request.query.non_empty("fieldManager").map(str::to_string),
    })
}

pub async fn resource_request(
    shared: &Arc<Shared>,
    user: &User,
    request: &ApiRequest,
    path: &ResourcePath,
) -> ApiResult<Response<Body>> {
    let watching = path.watch_prefix || request.query.flag("watch");
    let verb = verb(&request.method, path, watching)?;
    let resource = {
        let world = lock(&shared.world);
        resolve(&world, path).ok_or_else(not_found_path)?
    };
    if path.namespace.is_some() && !resource.namespaced {
        return Err(not_found_path());
    }
    if let Some(sub) = &path.subresource {
        if !resource.subresources.contains(&sub.as_str()) {
            return Err(not_found_path());
        }
    }
    let resource_name = path.resource_name();
    if !user.may(verb, &resource_name) {
        return Err(forbidden(
            &user.name,
            verb,
            &resource_name,
            resource.group,
            path.namespace.as_deref(),
            path.name.as_deref(),
        ));
    }
    // A create names its object in the body; rules by name or per object
    // see that name (JSON bodies; a protobuf create counts as unnamed).
    let created_name = match (&path.name, verb) {
        (None, "create") => serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|b| b.pointer("/metadata/name")?.as_str().map(str::to_string)),
        _ => None,
    };
    let exempt = shared
        .fault_exempt
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&user.name);
    let decision = if exempt {
        crate::faults::Decision::default()
    } else {
        lock(&shared.faults).decide(&FaultRequest {
            verb,
            resource: &resource_name,
            namespace: path.namespace.as_deref(),
            name: path.name.as_deref().or(created_name.as_deref()),
        })
    };
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if let Some(error) = decision.error {
        return Err(error);
    }
    let after_store = decision.error_after_store;
    let namespace = path.namespace.as_deref().unwrap_or("");
    let response = match verb {
        "watch" => {
            let request_watch = WatchRequest::from_query(
                resource,
                path.namespace.clone(),
                path.name.clone(),
                &request.query,
                table_request(request),
                decision.cut_watch_after,
            )?;
            let body = watch(shared, request_watch, &request.query)?;
            let mut response = Response::new(body);
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            return Ok(response);
        }
        "get" => get(shared, request, resource, namespace, path)?,
        "list" => list_objects(shared, request, resource, path)?,
        "create" => create(shared, request, resource, namespace, path)?,
        "update" => update(shared, request, resource, namespace, path)?,
        "patch" => patch(shared, request, resource, namespace, path)?,
        "delete" => delete(shared, request, resource, namespace, path)?,
        _ => delete_collection(shared, request, resource, path)?,
    };
    match after_store {
        // Reads are answered normally: only a write can fail after storing.
        Some(error) if response.status().is_success() && !matches!(verb, "get" | "list") => {
            Err(error)
        }
        _ => Ok(response),
    }
}

fn object_response(status: StatusCode, resource: &Resource, obj: &Value) -> Response<Body> {
    let mut out = Vec::new();
    list::write_object(&mut out, resource, obj);
    bytes_response(status, "application/json", out)
}

fn name_of(path: &ResourcePath) -> &str {
    path.name.as_deref().unwrap_or("")
}

fn get(
    shared: &Arc<Shared>,
    request: &ApiRequest,
    resource: &'static Resource,
    namespace: &str,
    path: &ResourcePath,
) -> ApiResult<Response<Body>> {
    let name = name_of(path);
    let (stored, now) = {
        let world = lock(&shared.world);
        let stored = world
            .store
            .get_stored(resource, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(resource.plural, name))?;
        (stored, world.clock.now())
    };
    match path.subresource.as_deref() {
        Some("scale") => Ok(json_response(StatusCode::OK, &scale_of(&stored.value()))),
        Some("log") => Ok(bytes_response(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "mesh-sim: container logs are not simulated\n",
        )),
        _ => match table_request(request) {
            Some(include) => {
                let obj = stored.value();
                let meta = json!({"resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)});
                Ok(json_response(
                    StatusCode::OK,
                    &table(resource, [&obj], include, now, meta, true),
                ))
            }
            None => Ok(bytes_response(
                StatusCode::OK,
                "application/json",
                stored.json().to_vec(),
            )),
        },
    }
}

/// The answer to a resource request that failed: a `Status`, in protobuf
/// when the request was a LIST that would have been answered in protobuf
/// (the API server encodes errors with the serializer it negotiated),
/// otherwise in JSON. Faults, RBAC refusals and bad queries of a pod LIST
/// from client-go's typed clients come back as protobuf, as on a cluster.
pub fn error_answer(
    shared: &Arc<Shared>,
    request: &ApiRequest,
    path: &ResourcePath,
    error: &ApiError,
) -> Response<Body> {
    let mut response = super::error_response(error);
    let is_list = request.method == Method::GET
        && path.name.is_none()
        && path.subresource.is_none()
        && !(path.watch_prefix || request.query.flag("watch"));
    if !is_list
        || !matches!(
            ListFormat::negotiate(&request.accept),
            ListFormat::Protobuf { .. }
        )
    {
        return response;
    }
    let encodes = {
        let world = lock(&shared.world);
        world.config.protobuf
            && resolve(&world, path).is_some_and(|resource| {
                super::proto::schema_of(&resource.api_version(), resource.kind).is_some()
            })
    };
    if encodes {
        let body = super::proto::status_body(&error.to_status());
        *response.body_mut() = http_body_util::BodyExt::boxed(http_body_util::Full::new(
            hyper::body::Bytes::from(body),
        ));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(super::proto::MEDIA_TYPE),
        );
    }
    response
}

fn list_objects(
    shared: &Arc<Shared>,
    request: &ApiRequest,
    resource: &'static Resource,
    path: &ResourcePath,
) -> ApiResult<Response<Body>> {
    let (page, now, protobuf) = {
        let world = lock(&shared.world);
        (
            list::list(
                &world.store,
                resource,
                path.namespace.as_deref(),
                &request.query,
            )?,
            world.clock.now(),
            world.config.protobuf,
        )
    };
    let json = |page: &list::ListPage| {
        bytes_response(
            StatusCode::OK,
            "application/json",
            list::list_body(resource, page),
        )
    };
    match ListFormat::negotiate(&request.accept) {
        ListFormat::Table => {
            let include = IncludeObject::parse(request.query.get("includeObject"));
            let objects: Vec<Value> = page.items.iter().map(Stored::value).collect();
            let t = table(
                resource,
                objects.iter(),
                include,
                now,
                list::list_meta(&page),
                true,
            );
            Ok(json_response(StatusCode::OK, &t))
        }
        // Switched off, the client gets JSON whatever it asked for: what an
        // API server behind a JSON-only proxy answers.
        ListFormat::Protobuf { or_json } if protobuf => {
            match list::list_body_protobuf(resource, &page) {
                Some(body) => Ok(bytes_response(
                    StatusCode::OK,
                    super::proto::MEDIA_TYPE,
                    body,
                )),
                // A kind without a schema, or an item holding a field the
                // schema lacks: JSON if the client takes it, else what the
                // API server answers a client that accepts nothing it has.
                None if or_json => Ok(json(&page)),
                None => Err(ApiError::not_acceptable(&["application/json"])),
            }
        }
        _ => Ok(json(&page)),
    }
}

/// The request body as a JSON object (JSON, or YAML when so declared).
fn body_object(request: &ApiRequest) -> ApiResult<Value> {
    if request
        .content_type
        .starts_with("application/vnd.kubernetes.protobuf")
    {
        // kubectl's typed clients (`kubectl create deployment ...`) send protobuf.
        return super::proto::object_from_body(&request.body).map_err(|e| match e {
            super::proto::DecodeError::Malformed(why) => ApiError::bad_request(format!(
                "the body of the request could not be decoded: {why}"
            )),
            super::proto::DecodeError::Unsupported(what) => {
                let mut e = ApiError::unsupported_media_type(&request.content_type);
                e.message = format!(
                    "mesh-sim cannot read {what}: send it as JSON or YAML instead (kubectl create -f or apply -f)"
                );
                e
            }
        });
    }
    let value: Value = if request.content_type.contains("yaml") {
        serde_yaml::from_slice(&request.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(&request.body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })?
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    Ok(value)
}

/// Checks the body names the kind of the URL and puts it in the URL's namespace.
fn place(resource: &Resource, obj: &mut Value, namespace: &str) -> ApiResult<()> {
    if let Some(kind) = obj.get("kind").and_then(Value::as_str) {
        if kind != resource.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                resource.kind
            )));
        }
    }
    if let Some(api_version) = obj.get("apiVersion").and_then(Value::as_str) {
        if api_version != resource.api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                resource.api_version()
            )));
        }
    }
    if resource.namespaced {
        let meta = metadata_mut(obj);
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != namespace => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta.insert("namespace".into(), json!(namespace));
            }
        }
    }
    Ok(())
}

fn check_name(obj: &Value, name: &str) -> ApiResult<()> {
    match obj.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if n != name => Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        ))),
        _ => Ok(()),
    }
}

fn wrote(shared: &Arc<Shared>, opts: &WriteOptions) {
    if !opts.dry_run {
        shared.wake_controllers.notify_one();
    }
}

fn create(
    shared: &Arc<Shared>,
    request: &ApiRequest,
    resource: &'static Resource,
    namespace: &str,
    path: &ResourcePath,
) -> ApiResult<Response<Body>> {
    let opts = write_options(request)?;
    if path.subresource.as_deref() == Some("eviction") {
        return evict(shared, request, namespace, name_of(path), &opts);
    }
    if path.name.is_some() {
        return Err(ApiError::method_not_allowed(
            "POST is not allowed on this subresource",
        ));
    }
    if resource.namespaced && path.namespace.is_none() {
        return Err(not_found_path());
    }
    let mut obj = body_object(request)?;
    place(resource, &mut obj, namespace)?;
    let created = lock(&shared.world).create(resource, obj, &opts)?;
    wrote(shared, &opts);
    Ok(object_response(StatusCode::CREATED, resource, &created))
}

fn update(
    shared: &Arc<Shared>,
    request: &ApiRequest,
    resource: &'static Resource,
    namespace: &str,
    path: &ResourcePath,
) -> ApiResult<Response<Body>> {
    let opts = write_options(request)?;
    let name = name_of(path);
    let mut obj = body_object(request)?;
    if path.subresource.as_deref() == Some("scale") {
        let updated = {
            let mut world = lock(&shared.world);
            set_scale(&mut world, resource, namespace, name, &obj, &opts)?
        };
        wrote(shared, &opts);
        return Ok(json_response(StatusCode::OK, &scale_of(&updated)));
    }
    check_name(&obj, name)?;
    place(resource, &mut obj, namespace)?;
    metadata_mut(&mut obj).insert("name".into(), json!(name));
    let updated = {
        let mut world = lock(&shared.world);
        match path.subresource.as_deref() {
            Some("status") => world.update_status(resource, obj, &opts)?,
            None => world.update(resource, obj, &opts)?,
            Some(_) => {
                return Err(ApiError::method_not_allowed(
                    "PUT is not allowed on this subresource",
                ));
            }
        }
    };
    wrote(shared, &opts);
    Ok(object_response(StatusCode::OK, resource, &updated))
}

fn patch(
    shared: &Arc<Shared>,
    request: &ApiRequest,
    resource: &'static Resource,
    namespace: &str,
    path: &ResourcePath,
) -> ApiResult<Response<Body>> {
    let opts = write_options(request)?;
    let name = name_of(path);
    let patch_type = PatchType::from_content_type(&request.content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(&request.content_type))?;
    let field_manager = request.query.non_empty("fieldManager");
    if patch_type == PatchType::Apply && field_manager.is_none() {
        return Err(ApiError::bad_request(
            "PATCH, fieldManager is required for apply requests",
        ));
    }
    let force = request.query.flag("force");
    let (status, result) = {
        let mut world = lock(&shared.world);
        let current = world.store.get(resource, namespace, name);
        match (current, path.subresource.as_deref()) {
            (None, None) if patch_type == PatchType::Apply => {
                let mut obj = apply_patch(
                    patch_type,
                    &json!({}),
                    &request.body,
                    resource.kind,
                    field_manager,
                    force,
                )?;
                check_name(&obj, name)?;
                place(resource, &mut obj, namespace)?;
                metadata_mut(&mut obj).insert("name".into(), json!(name));
                (StatusCode::CREATED, world.create(resource, obj, &opts)?)
            }
            (None, _) => return Err(ApiError::not_found(resource.plural, name)),
            (Some(current), Some("scale")) => {
                let scale = scale_of(&current);
                let patched = apply_patch(
                    patch_type,
                    &scale,
                    &request.body,
                    "Scale",
                    field_manager,
                    force,
                )?;
                let updated = set_scale(&mut world, resource, namespace, name, &patched, &opts)?;
                drop(world);
                wrote(shared, &opts);
                return Ok(json_response(StatusCode::OK, &scale_of(&updated)));
            }
            (Some(current), sub) => {
                let mut patched = apply_patch(
                    patch_type,
                    &current,
                    &request.body,
                    resource.kind,
                    field_manager,
                    force,
                )?;
                check_name(&patched, name)?;
                place(resource, &mut patched, namespace)?;
                metadata_mut(&mut patched).insert("name".into(), json!(name));
                let updated = match sub {
                    Some("status") => world.update_status(resource, patched, &opts)?,
                    None => world.update(resource, patched, &opts)?,
                    Some(_) => {
                        return Err(ApiError::method_not_allowed(
                            "PATCH is not allowed on this subresource",
                        ));
                    }
                };
                (StatusCode::OK, updated)
            }
        }
    };
    wrote(shared, &opts);
    Ok(object_response(status, resource, &result))
}

/// DeleteOptions from the body, if any (kubectl sends one).
fn delete_options(request: &ApiRequest) -> ApiResult<Value> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    body_object(request)
}

fn delete(
    shared: &Arc<Shared>,
    request: &ApiRequest,
    resource: &'static Resource,
    namespace: &str,
    path: &ResourcePath,
) -> ApiResult<Response<Body>> {
    if path.subresource.is_some() {
        return Err(ApiError::method_not_allowed(
            "DELETE is not allowed on this subresource",
        ));
    }
    let name = name_of(path);
    let body = delete_options(request)?;
    let mut opts = write_options(request)?;
    if body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|v| v == "All"))
    {
        opts.dry_run = true;
    }
    let removed = {
        let mut world = lock(&shared.world);
        let current = world
            .store
            .get(resource, namespace, name)
            .ok_or_else(|| ApiError::not_found(resource.plural, name))?;
        check_preconditions(resource, &current, body.get("preconditions"))?;
        world.delete(resource, namespace, name, &opts)?
    };
    wrote(shared, &opts);
    Ok(json_response(
        StatusCode::OK,
        &deleted_status(resource, &removed),
    ))
}

fn check_preconditions(
    resource: &Resource,
    current: &Obj,
    preconditions: Option<&Value>,
) -> ApiResult<()> {
    let Some(pre) = preconditions else {
        return Ok(());
    };
    let name = current
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        let Some(wanted) = pre.get(field).and_then(Value::as_str) else {
            continue;
        };
        let actual = current
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if wanted != actual {
            return Err(ApiError::conflict(
                resource.plural,
                name,
                &format!(
                    "Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}"
                ),
            ));
        }
    }
    Ok(())
}

/// The `Status` a completed deletion answers with.
fn deleted_status(resource: &Resource, removed: &Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": removed.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
            "group": resource.group,
            "kind": resource.plural,
            "uid": removed.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
        },
    })
}

fn delete_collection(
    shared: &Arc<Shared>,
    request: &ApiRequest,
    resource: &'static Resource,
    path: &ResourcePath,
) -> ApiResult<Response<Body>> {
    let opts = write_options(request)?;
    let selectors = Selectors::from_query(&request.query)?;
    let deleted = {
        let mut world = lock(&shared.world);
        let targets: Vec<(String, String)> = world
            .store
            .list_stored(resource, path.namespace.as_deref())
            .filter(|(_, s)| selectors.matches_stored(s))
            .map(|(key, _)| (key.namespace.clone(), key.name.clone()))
            .collect();
        let mut deleted = Vec::new();
        for (ns, name) in targets {
            // A dependent may already be gone with its owner.
            if let Ok(obj) = world.delete(resource, &ns, &name, &opts) {
                deleted.push(obj);
            }
        }
        (deleted, world.store.resource_version())
    };
    wrote(shared, &opts);
    let page = list::ListPage {
        items: deleted.0.iter().map(|o| Stored::of(resource, o)).collect(),
        resource_version: deleted.1,
        continue_token: None,
    };
    Ok(bytes_response(
        StatusCode::OK,
        "application/json",
        list::list_body(resource, &page),
    ))
}

/// The `autoscaling/v1` Scale of a Deployment, ReplicaSet or StatefulSet.
pub fn scale_of(obj: &Value) -> Value {
    // A Rollout's CRD declares its own paths: `.status.HPAReplicas` and the
    // selector text in `.status.selector`.
    let rollout = obj.get("kind").and_then(Value::as_str) == Some("Rollout");
    let status_replicas = if rollout {
        "/status/HPAReplicas"
    } else {
        "/status/replicas"
    };
    let selector = if rollout {
        json!(
            obj.pointer("/status/selector")
                .and_then(Value::as_str)
                .unwrap_or("")
        )
    } else {
        json!(
            obj.pointer("/spec/selector")
                .map(crate::selectors::format_label_selector)
                .unwrap_or_default()
        )
    };
    let meta = |k: &str| {
        obj.pointer(&format!("/metadata/{k}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta("name"),
            "namespace": meta("namespace"),
            "uid": meta("uid"),
            "resourceVersion": meta("resourceVersion"),
            "creationTimestamp": meta("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer(status_replicas).and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

/// Writes `scale.spec.replicas` into the object, honouring the Scale's
/// `resourceVersion` as a precondition.
fn set_scale(
    world: &mut World,
    resource: &'static Resource,
    namespace: &str,
    name: &str,
    scale: &Value,
    opts: &WriteOptions,
) -> ApiResult<Obj> {
    let current = world
        .store
        .get(resource, namespace, name)
        .ok_or_else(|| ApiError::not_found(resource.plural, name))?;
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::invalid(
                "Scale",
                name,
                "spec.replicas: Invalid value: must be a non-negative integer",
            )
        })?;
    let mut next = (*current).clone();
    next["spec"]["replicas"] = json!(replicas);
    if let Some(rv) = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty())
    {
        metadata_mut(&mut next).insert("resourceVersion".into(), json!(rv));
    }
    world.update(resource, next, opts)
}

/// `pods/<name>/eviction`: see [`crate::eviction`].
fn evict(
    shared: &Arc<Shared>,
    request: &ApiRequest,
    namespace: &str,
    name: &str,
    opts: &WriteOptions,
) -> ApiResult<Response<Body>> {
    let body = body_object(request).unwrap_or(Value::Null);
    let dry_run = {
        let mut world = lock(&shared.world);
        crate::eviction::evict(&mut world, namespace, name, &body, opts)?;
        opts.dry_run
            || body
                .pointer("/deleteOptions/dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|v| v == "All"))
    };
    wrote(shared, &WriteOptions::dry_run(dry_run));
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(method_named: bool, sub: Option<&str>) -> ResourcePath {
        ResourcePath {
            group: "apps".into(),
            version: "v1".into(),
            plural: "deployments".into(),
            namespace: Some("shop".into()),
            name: method_named.then(|| "web".to_string()),
            subresource: sub.map(str::to_string),
            watch_prefix: false,
        }
    }

    #[test]
    fn methods_map_to_rbac_verbs() {
        assert_eq!(verb(&Method::GET, &path(true, None), false).unwrap(), "get");
        assert_eq!(
            verb(&Method::GET, &path(false, None), false).unwrap(),
            "list"
        );
        assert_eq!(
            verb(&Method::GET, &path(false, None), true).unwrap(),
            "watch"
        );
        assert_eq!(
            verb(&Method::POST, &path(false, None), false).unwrap(),
            "create"
        );
        assert_eq!(
            verb(&Method::PUT, &path(true, Some("scale")), false).unwrap(),
            "update"
        );
        assert_eq!(
            verb(&Method::PATCH, &path(true, None), false).unwrap(),
            "patch"
        );
        assert_eq!(
            verb(&Method::DELETE, &path(false, None), false).unwrap(),
            "deletecollection"
        );
        assert_eq!(
            verb(&Method::PUT, &path(false, None), false)
                .unwrap_err()
                .code,
            405
        );
    }

    #[test]
    fn scale_carries_replicas_and_the_selector_as_text() {
        let d = json!({
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}},
            "status": {"replicas": 2},
        });
        let scale = scale_of(&d);
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web,tier in (a,b)");
        assert_eq!(scale["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn lists_are_answered_in_protobuf_when_the_client_prefers_it() {
        use ListFormat::{Json, Protobuf, Table};
        let cases = [
            // client-go's and kubectl's typed clients
            (
                "application/vnd.kubernetes.protobuf, application/json",
                Protobuf { or_json: true },
            ),
            (
                "application/vnd.kubernetes.protobuf",
                Protobuf { or_json: false },
            ),
            (
                "application/vnd.kubernetes.protobuf;q=1,*/*;q=0.5",
                Protobuf { or_json: true },
            ),
            ("application/json", Json),
            // kubectl get
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
                Table,
            ),
            ("*/*", Json),
            ("", Json),
            (
                "application/json, application/vnd.kubernetes.protobuf",
                Json,
            ),
            (
                "application/vnd.kubernetes.protobuf;q=0, application/json",
                Json,
            ),
            (
                "application/json;q=0.5, application/vnd.kubernetes.protobuf",
                Protobuf { or_json: true },
            ),
            (
                "application/json;q=0, application/vnd.kubernetes.protobuf",
                Protobuf { or_json: false },
            ),
            (
                "text/plain, application/vnd.kubernetes.protobuf",
                Protobuf { or_json: false },
            ),
            (
                " Application/Vnd.Kubernetes.Protobuf ;q=0.9 , application/yaml",
                Protobuf { or_json: false },
            ),
            // The metadata client's lists are another kind.
            (
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
                Json,
            ),
        ];
        for (accept, expected) in cases {
            assert_eq!(ListFormat::negotiate(accept), expected, "Accept: {accept}");
        }
    }
}
