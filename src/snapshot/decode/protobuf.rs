//! Pod LIST pages in Kubernetes' protobuf encoding, read into the same
//! lean structs the JSON decoder fills, so one `LeanPod::info` makes the
//! `PodInfo` either way.
//!
//! Why: a JSON page has to be scanned byte by byte to skip what the
//! snapshot does not keep (a pod's volumes, probes, arguments, container
//! statuses: most of its text), and every key is read as a string to be
//! compared. A protobuf message says each field's number and length up
//! front, so a field the snapshot does not keep is stepped over without
//! being looked at. client-go's typed clients ask for protobuf for the same
//! reason; the API server answers it for built-in kinds.
//!
//! The envelope and the list around the items are read by
//! [`crate::protobuf`]. Field numbers are those of Kubernetes'
//! `generated.proto` files: `k8s.io/api/core/v1/generated.proto` (Pod,
//! PodSpec, Container, EnvVar, ResourceRequirements, ResourceClaim,
//! PodStatus, PodCondition) and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto` (ObjectMeta,
//! OwnerReference, Time).
//!
//! Go writes every non-pointer field, set or not, where JSON leaves an
//! empty one out (`omitempty`); so an empty string read here for a field
//! the JSON decoder holds as an `Option` is `None`, as JSON would have it.

use chrono::DateTime;
use std::borrow::Cow;
use std::marker::PhantomData;

use k8s_openapi::api::core::v1::ResourceClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::IgnoredAny;

use super::{
    Condition, Decoded, DeploymentSpec, DeploymentStatus, DeploymentStrategy, Env, KeepKeys, Kept,
    LabelEntries, LeanDeployment, LeanPdb, LeanPod, LeanReplicaSet, Meta, Owner, PdbSpec,
    PdbStatus, PodContainer, PodReady, PodSpec, PodStatus, Port, PreviousPod, ReplicaSetSpec,
    ReplicaSetStatus, Resources, RollingUpdate, Str, Template, TemplateAnnotations,
    TemplateContainer, TemplateMeta, TemplateSpec, Time, XdsAddress,
};
use smallvec::SmallVec;

use crate::protobuf::{Read, Wire, envelope_object, fields, malformed};
use crate::snapshot::{
    DeploymentInfo, Interner, IstiodInfo, Labels, PdbInfo, PodInfo, ReplicaSetInfo,
};

/// A string field, borrowed from the page.
fn text<'a>(v: Wire<'a>) -> Read<Str<'a>> {
    Ok(Str(Cow::Borrowed(v.str()?)))
}

/// A string field JSON leaves out when empty.
fn non_empty<'a>(v: Wire<'a>) -> Read<Option<Str<'a>>> {
    Ok(v.non_empty_str()?.map(|s| Str(Cow::Borrowed(s))))
}

/// The pods of a protobuf page.
pub fn pods(page: &[u8], interner: &Interner, out: &mut Vec<PodInfo>) -> Decoded {
    let mut previous = PreviousPod::default();
    for field in fields(envelope_object(page)?) {
        if let (2, wire) = field? {
            out.push(pod(wire.bytes()?)?.info(interner, &mut previous));
        }
    }
    Ok(())
}

fn pod(bytes: &[u8]) -> Read<LeanPod<'_>> {
    let mut pod = LeanPod {
        metadata: None,
        spec: None,
        status: None,
    };
    for field in fields(bytes) {
        match field? {
            (1, v) => pod.metadata = Some(meta(v.bytes()?)?),
            (2, v) => pod.spec = Some(pod_spec(v.bytes()?)?),
            (3, v) => pod.status = Some(pod_status(v.bytes()?)?),
            _ => {}
        }
    }
    Ok(pod)
}

fn meta<F: KeepKeys>(bytes: &[u8]) -> Read<Meta<'_, F>> {
    let mut meta = Meta::default();
    let mut labels = SmallVec::new();
    let mut annotations = Labels::new();
    let mut owners = SmallVec::new();
    let (mut has_labels, mut has_annotations, mut has_owners) = (false, false, false);
    for field in fields(bytes) {
        match field? {
            (1, v) => meta.name = non_empty(v)?,
            (3, v) => meta.namespace = non_empty(v)?,
            (5, v) => meta.uid = non_empty(v)?,
            (7, v) => meta.generation = Some(v.varint()? as i64).filter(|g| *g != 0),
            (8, v) => meta.creation_timestamp = time(v.bytes()?)?,
            // A pointer in Go: present only when set.
            (9, _) => meta.deletion_timestamp = Some(IgnoredAny),
            (11, v) => {
                has_labels = true;
                labels.push(map_entry(v.bytes()?)?);
            }
            (12, v) => {
                has_annotations = true;
                let (key, value) = map_entry_unread(v.bytes()?)?;
                if F::keep(key.as_str()) {
                    annotations.insert(key.0.into_owned(), value.str()?.to_string());
                }
            }
            (13, v) => {
                has_owners = true;
                owners.push(owner(v.bytes()?)?);
            }
            _ => {}
        }
    }
    meta.labels = has_labels.then_some(LabelEntries(labels));
    meta.annotations = has_annotations.then_some(Kept(annotations, PhantomData));
    meta.owner_references = has_owners.then_some(owners);
    Ok(meta)
}

/// A `map<string, string>` entry: key 1, value 2.
fn map_entry(bytes: &[u8]) -> Read<(Str<'_>, Str<'_>)> {
    let (key, value) = map_entry_unread(bytes)?;
    Ok((key, text(value)?))
}

/// A map entry's key, and its value still on the wire: an annotation the
/// kind does not keep (the injector's status, a last-applied
/// configuration) is not even checked for UTF-8.
fn map_entry_unread(bytes: &[u8]) -> Read<(Str<'_>, Wire<'_>)> {
    let (mut key, mut value) = (Str::default(), Wire::Bytes(&[]));
    for field in fields(bytes) {
        match field? {
            (1, v) => key = text(v)?,
            (2, v) => value = v,
            _ => {}
        }
    }
    Ok((key, value))
}

/// A `metav1.Time` (seconds 1, nanos 2); the zero time, which JSON writes
/// as `null`, is `None`.
fn time(bytes: &[u8]) -> Read<Option<Time<'static>>> {
    let (mut seconds, mut nanos) = (0i64, 0i32);
    for field in fields(bytes) {
        match field? {
            (1, v) => seconds = v.varint()? as i64,
            (2, v) => nanos = v.varint()? as i32,
            _ => {}
        }
    }
    if seconds == 0 && nanos == 0 {
        return Ok(None);
    }
    let at = u32::try_from(nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(seconds, nanos))
        .ok_or_else(|| malformed("a time is out of range"))?;
    Ok(Some(Time::At(at)))
}

fn owner(bytes: &[u8]) -> Read<Owner<'_>> {
    let mut owner = Owner {
        kind: Str::default(),
        api_version: Str::default(),
        name: Str::default(),
        uid: Str::default(),
        controller: None,
    };
    for field in fields(bytes) {
        match field? {
            (1, v) => owner.kind = text(v)?,
            (3, v) => owner.name = text(v)?,
            (4, v) => owner.uid = text(v)?,
            (5, v) => owner.api_version = text(v)?,
            (6, v) => owner.controller = Some(v.varint()? != 0),
            _ => {}
        }
    }
    Ok(owner)
}

fn pod_spec(bytes: &[u8]) -> Read<PodSpec<'_>> {
    let mut spec = PodSpec {
        containers: None,
        init_containers: None,
        host_network: None,
        node_name: None,
    };
    for field in fields(bytes) {
        match field? {
            (2, v) => spec
                .containers
                .get_or_insert_with(SmallVec::new)
                .push(container(v.bytes()?)?),
            (20, v) => spec
                .init_containers
                .get_or_insert_with(SmallVec::new)
                .push(container(v.bytes()?)?),
            (10, v) => spec.node_name = non_empty(v)?,
            (11, v) => spec.host_network = Some(v.varint()? != 0).filter(|on| *on),
            _ => {}
        }
    }
    Ok(spec)
}

fn container(bytes: &[u8]) -> Read<PodContainer<'_>> {
    let mut container = PodContainer {
        name: Str::default(),
        image: None,
        restart_policy: None,
        resources: None,
        env: None,
    };
    for field in fields(bytes) {
        match field? {
            (1, v) => container.name = text(v)?,
            (2, v) => container.image = non_empty(v)?,
            (7, v) => {
                let env = container.env.get_or_insert_with(XdsAddress::default);
                // The first literal value of the first XDS_ADDRESS, as the
                // JSON decoder keeps it.
                if env.0.is_none() {
                    env.0 = xds_address(v.bytes()?)?;
                }
            }
            (8, v) => container.resources = Some(resources(v.bytes()?)?),
            // A pointer in Go: present only when set.
            (24, v) => container.restart_policy = Some(text(v)?),
            _ => {}
        }
    }
    Ok(container)
}

/// An `EnvVar`'s value when its name is `XDS_ADDRESS`.
fn xds_address(bytes: &[u8]) -> Read<Option<Str<'_>>> {
    let (mut is_xds, mut value) = (false, None);
    for field in fields(bytes) {
        match field? {
            (1, v) => is_xds = v.bytes()? == b"XDS_ADDRESS",
            (2, v) => value = non_empty(v)?,
            _ => {}
        }
    }
    Ok(value.filter(|_| is_xds))
}

fn resources(bytes: &[u8]) -> Read<Resources<'_>> {
    let mut resources = Resources {
        limits: None,
        requests: None,
        claims: None,
    };
    for field in fields(bytes) {
        match field? {
            (1, v) => {
                let (name, quantity) = quantity_entry(v.bytes()?)?;
                resources
                    .limits
                    .get_or_insert_with(Default::default)
                    .insert(name, quantity);
            }
            (2, v) => {
                let (name, quantity) = quantity_entry(v.bytes()?)?;
                resources
                    .requests
                    .get_or_insert_with(Default::default)
                    .insert(name, quantity);
            }
            (3, v) => {
                let mut claim = ResourceClaim::default();
                for field in fields(v.bytes()?) {
                    match field? {
                        (1, v) => claim.name = v.str()?.to_string(),
                        (2, v) => claim.request = v.non_empty_str()?.map(str::to_string),
                        _ => {}
                    }
                }
                resources.claims.get_or_insert_with(Vec::new).push(claim);
            }
            _ => {}
        }
    }
    Ok(resources)
}

/// A `map<string, Quantity>` entry; a Quantity is a message holding its
/// text in field 1.
fn quantity_entry(bytes: &[u8]) -> Read<(Str<'_>, Str<'_>)> {
    let (mut name, mut quantity) = (Str::default(), Str::default());
    for field in fields(bytes) {
        match field? {
            (1, v) => name = text(v)?,
            (2, v) => {
                for inner in fields(v.bytes()?) {
                    if let (1, v) = inner? {
                        quantity = text(v)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok((name, quantity))
}

fn pod_status(bytes: &[u8]) -> Read<PodStatus<'_>> {
    let mut status = PodStatus {
        phase: None,
        ready: PodReady(false),
    };
    for field in fields(bytes) {
        match field? {
            (1, v) => status.phase = non_empty(v)?,
            // A PodCondition's reason is its field 5.
            (2, v) => status.ready.0 |= PodReady::of(&condition(v.bytes()?, 5)?),
            _ => {}
        }
    }
    Ok(status)
}

/// A status condition: type 1, status 2, and its reason, whose number
/// differs between kinds (a PodCondition's 5, a DeploymentCondition's 4).
fn condition(bytes: &[u8], reason_field: u64) -> Read<Condition<'_>> {
    let mut condition = Condition {
        type_: Str::default(),
        status: Str::default(),
        reason: None,
    };
    for field in fields(bytes) {
        match field? {
            (1, v) => condition.type_ = text(v)?,
            (2, v) => condition.status = text(v)?,
            (n, v) if n == reason_field => condition.reason = non_empty(v)?,
            _ => {}
        }
    }
    Ok(condition)
}

/// The ReplicaSets of a protobuf page (`k8s.io/api/apps/v1/generated.proto`).
pub fn replica_sets(page: &[u8], interner: &Interner, out: &mut Vec<ReplicaSetInfo>) -> Decoded {
    for field in fields(envelope_object(page)?) {
        if let (2, wire) = field? {
            out.push(replica_set(wire.bytes()?)?.info(interner));
        }
    }
    Ok(())
}

fn replica_set(bytes: &[u8]) -> Read<LeanReplicaSet<'_>> {
    let mut set = LeanReplicaSet {
        metadata: None,
        spec: None,
        status: None,
    };
    for field in fields(bytes) {
        match field? {
            (1, v) => set.metadata = Some(meta(v.bytes()?)?),
            (2, v) => {
                let mut spec = ReplicaSetSpec {
                    replicas: None,
                    template: None,
                };
                for field in fields(v.bytes()?) {
                    match field? {
                        // A pointer in Go: present only when set.
                        (1, v) => spec.replicas = Some(int32(v)?),
                        (3, v) => spec.template = Some(template(v.bytes()?)?),
                        _ => {}
                    }
                }
                set.spec = Some(spec);
            }
            (3, v) => {
                let mut status = ReplicaSetStatus {
                    replicas: 0,
                    ready_replicas: None,
                    available_replicas: None,
                };
                for field in fields(v.bytes()?) {
                    match field? {
                        (1, v) => status.replicas = int32(v)?,
                        (4, v) => status.ready_replicas = omitted_if_zero(v)?,
                        (5, v) => status.available_replicas = omitted_if_zero(v)?,
                        _ => {}
                    }
                }
                set.status = Some(status);
            }
            _ => {}
        }
    }
    Ok(set)
}

/// The Deployments of a protobuf page, as [`super::deployments`] gives them.
pub fn deployments(
    page: &[u8],
    control_plane_namespace: &str,
    interner: &Interner,
    out: &mut Vec<(DeploymentInfo, Option<Box<IstiodInfo>>)>,
) -> Decoded {
    for field in fields(envelope_object(page)?) {
        if let (2, wire) = field? {
            out.push(deployment(wire.bytes()?)?.facts(control_plane_namespace, interner));
        }
    }
    Ok(())
}

fn deployment(bytes: &[u8]) -> Read<LeanDeployment<'_>> {
    let mut deployment = LeanDeployment {
        metadata: None,
        spec: None,
        status: None,
    };
    for field in fields(bytes) {
        match field? {
            (1, v) => deployment.metadata = Some(meta(v.bytes()?)?),
            (2, v) => deployment.spec = Some(deployment_spec(v.bytes()?)?),
            (3, v) => deployment.status = Some(deployment_status(v.bytes()?)?),
            _ => {}
        }
    }
    Ok(deployment)
}

fn deployment_spec(bytes: &[u8]) -> Read<DeploymentSpec<'_>> {
    let mut spec = DeploymentSpec {
        replicas: None,
        paused: None,
        strategy: None,
        template: None,
    };
    for field in fields(bytes) {
        match field? {
            // A pointer in Go: present only when set.
            (1, v) => spec.replicas = Some(int32(v)?),
            (3, v) => spec.template = Some(template(v.bytes()?)?),
            (4, v) => {
                let mut strategy = DeploymentStrategy {
                    type_: None,
                    rolling_update: None,
                };
                for field in fields(v.bytes()?) {
                    match field? {
                        (1, v) => strategy.type_ = v.non_empty_str()?.map(str::to_string),
                        (2, v) => {
                            let mut rolling = RollingUpdate {
                                max_unavailable: None,
                                max_surge: None,
                            };
                            for field in fields(v.bytes()?) {
                                match field? {
                                    (1, v) => rolling.max_unavailable = Some(int_or_string(v)?),
                                    (2, v) => rolling.max_surge = Some(int_or_string(v)?),
                                    _ => {}
                                }
                            }
                            strategy.rolling_update = Some(rolling);
                        }
                        _ => {}
                    }
                }
                spec.strategy = Some(strategy);
            }
            (7, v) => spec.paused = Some(v.varint()? != 0).filter(|on| *on),
            _ => {}
        }
    }
    Ok(spec)
}

fn deployment_status(bytes: &[u8]) -> Read<DeploymentStatus<'_>> {
    let mut status = DeploymentStatus {
        observed_generation: None,
        replicas: None,
        updated_replicas: None,
        ready_replicas: None,
        available_replicas: None,
        unavailable_replicas: None,
        conditions: None,
    };
    for field in fields(bytes) {
        match field? {
            (1, v) => status.observed_generation = Some(v.varint()? as i64).filter(|g| *g != 0),
            (2, v) => status.replicas = omitted_if_zero(v)?,
            (3, v) => status.updated_replicas = omitted_if_zero(v)?,
            (4, v) => status.available_replicas = omitted_if_zero(v)?,
            (5, v) => status.unavailable_replicas = omitted_if_zero(v)?,
            (7, v) => status.ready_replicas = omitted_if_zero(v)?,
            // A DeploymentCondition's reason is its field 4.
            (6, v) => status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(condition(v.bytes()?, 4)?),
            _ => {}
        }
    }
    Ok(status)
}

/// A `PodTemplateSpec`: metadata 1 (an ObjectMeta, of which the labels and
/// the kept annotations), spec 2 (a PodSpec).
fn template(bytes: &[u8]) -> Read<Template<'_>> {
    let mut template = Template::default();
    for field in fields(bytes) {
        match field? {
            (1, v) => {
                let meta: Meta<'_, TemplateAnnotations> = meta(v.bytes()?)?;
                template.metadata = Some(TemplateMeta {
                    labels: meta.labels,
                    annotations: meta.annotations,
                });
            }
            (2, v) => {
                let mut spec = TemplateSpec {
                    containers: None,
                    init_containers: None,
                    host_network: None,
                };
                for field in fields(v.bytes()?) {
                    match field? {
                        (2, v) => spec
                            .containers
                            .get_or_insert_with(Vec::new)
                            .push(template_container(v.bytes()?)?),
                        (20, v) => spec
                            .init_containers
                            .get_or_insert_with(Vec::new)
                            .push(template_container(v.bytes()?)?),
                        (11, v) => spec.host_network = Some(v.varint()? != 0).filter(|on| *on),
                        _ => {}
                    }
                }
                template.spec = Some(spec);
            }
            _ => {}
        }
    }
    Ok(template)
}

fn template_container(bytes: &[u8]) -> Read<TemplateContainer<'_>> {
    let mut container = TemplateContainer {
        name: Str::default(),
        image: None,
        restart_policy: None,
        ports: None,
        env: None,
    };
    for field in fields(bytes) {
        match field? {
            (1, v) => container.name = text(v)?,
            (2, v) => container.image = non_empty(v)?,
            (6, v) => {
                // A ContainerPort: name 1, containerPort 3.
                let mut port = Port {
                    name: None,
                    container_port: 0,
                };
                for field in fields(v.bytes()?) {
                    match field? {
                        (1, v) => port.name = v.non_empty_str()?.map(str::to_string),
                        (3, v) => port.container_port = int32(v)?,
                        _ => {}
                    }
                }
                container.ports.get_or_insert_with(Vec::new).push(port);
            }
            (7, v) => {
                let mut env = Env {
                    name: Str::default(),
                    value: None,
                };
                for field in fields(v.bytes()?) {
                    match field? {
                        (1, v) => env.name = text(v)?,
                        (2, v) => env.value = non_empty(v)?,
                        _ => {}
                    }
                }
                container.env.get_or_insert_with(Vec::new).push(env);
            }
            // A pointer in Go: present only when set.
            (24, v) => container.restart_policy = Some(text(v)?),
            _ => {}
        }
    }
    Ok(container)
}

/// The PodDisruptionBudgets of a protobuf page
/// (`k8s.io/api/policy/v1/generated.proto`).
pub fn pod_disruption_budgets(page: &[u8], out: &mut Vec<PdbInfo>) -> Decoded {
    for field in fields(envelope_object(page)?) {
        if let (2, wire) = field? {
            out.push(PdbInfo::from(pdb(wire.bytes()?)?));
        }
    }
    Ok(())
}

fn pdb(bytes: &[u8]) -> Read<LeanPdb<'_>> {
    let mut pdb = LeanPdb {
        metadata: None,
        spec: None,
        status: None,
    };
    for field in fields(bytes) {
        match field? {
            (1, v) => pdb.metadata = Some(meta(v.bytes()?)?),
            (2, v) => {
                let mut spec = PdbSpec {
                    selector: None,
                    min_available: None,
                    max_unavailable: None,
                };
                for field in fields(v.bytes()?) {
                    match field? {
                        // Pointers in Go: present only when set.
                        (1, v) => spec.min_available = Some(int_or_string(v)?),
                        (2, v) => spec.selector = Some(label_selector(v.bytes()?)?),
                        (3, v) => spec.max_unavailable = Some(int_or_string(v)?),
                        _ => {}
                    }
                }
                pdb.spec = Some(spec);
            }
            (3, v) => {
                let mut status = PdbStatus {
                    disruptions_allowed: 0,
                    current_healthy: 0,
                    desired_healthy: 0,
                    expected_pods: 0,
                };
                for field in fields(v.bytes()?) {
                    match field? {
                        (3, v) => status.disruptions_allowed = int32(v)?,
                        (4, v) => status.current_healthy = int32(v)?,
                        (5, v) => status.desired_healthy = int32(v)?,
                        (6, v) => status.expected_pods = int32(v)?,
                        _ => {}
                    }
                }
                pdb.status = Some(status);
            }
            _ => {}
        }
    }
    Ok(pdb)
}

/// An `int32` (Go writes a negative one as a ten-byte varint).
fn int32(v: Wire<'_>) -> Read<i32> {
    Ok(v.varint()? as i64 as i32)
}

/// An `int32` JSON leaves out when zero (`omitempty`).
fn omitted_if_zero(v: Wire<'_>) -> Read<Option<i32>> {
    Ok(Some(int32(v)?).filter(|n| *n != 0))
}

/// An `intstr.IntOrString`: type 1 (0 an int, 1 a string), intVal 2, strVal 3.
fn int_or_string(v: Wire<'_>) -> Read<IntOrString> {
    let (mut is_string, mut int, mut string) = (false, 0, String::new());
    for field in fields(v.bytes()?) {
        match field? {
            (1, v) => is_string = v.varint()? == 1,
            (2, v) => int = int32(v)?,
            (3, v) => string = v.str()?.to_string(),
            _ => {}
        }
    }
    Ok(if is_string {
        IntOrString::String(string)
    } else {
        IntOrString::Int(int)
    })
}

/// A `metav1.LabelSelector`: matchLabels 1 (a map), matchExpressions 2
/// (key 1, operator 2, values 3).
fn label_selector(bytes: &[u8]) -> Read<LabelSelector> {
    let mut selector = LabelSelector::default();
    for field in fields(bytes) {
        match field? {
            (1, v) => {
                let (key, value) = map_entry(v.bytes()?)?;
                selector
                    .match_labels
                    .get_or_insert_with(Default::default)
                    .insert(key.0.into_owned(), value.0.into_owned());
            }
            (2, v) => {
                let mut requirement = LabelSelectorRequirement::default();
                for field in fields(v.bytes()?) {
                    match field? {
                        (1, v) => requirement.key = v.str()?.to_string(),
                        (2, v) => requirement.operator = v.str()?.to_string(),
                        (3, v) => requirement
                            .values
                            .get_or_insert_with(Vec::new)
                            .push(v.str()?.to_string()),
                        _ => {}
                    }
                }
                selector
                    .match_expressions
                    .get_or_insert_with(Vec::new)
                    .push(requirement);
            }
            _ => {}
        }
    }
    Ok(selector)
}
