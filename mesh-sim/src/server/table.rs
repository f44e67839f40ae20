//! `meta.k8s.io/v1` Table responses, which `kubectl get` asks for.
//!
//! Since Kubernetes 1.11 the API server, not kubectl, decides the columns of
//! `kubectl get`: kubectl sends `Accept: application/json;as=Table;...` and
//! prints the rows it gets back, adding NAMESPACE and label columns (`-A`,
//! `-L`, `--show-labels`) itself from each row's object metadata. Columns with
//! `priority: 1` are shown only by `-o wide`. Without a Table kubectl would
//! fall back to NAME and AGE alone, so the kinds a mesh upgrade looks at get
//! their usual columns here; the rest get NAME and AGE.
//!
//! Ages are computed against the simulated clock, like every other time here.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::resources::Resource;

/// `includeObject`: what each row carries besides its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
    description: &'static str,
}

const fn col(
    name: &'static str,
    kind: &'static str,
    priority: u8,
    description: &'static str,
) -> Column {
    Column {
        name,
        kind,
        priority,
        description,
    }
}

const NAME: Column = col(
    "Name",
    "string",
    0,
    "Name must be unique within a namespace.",
);
const AGE: Column = col("Age", "string", 0, "Time since the object was created.");

fn columns(resource: &Resource) -> Vec<Column> {
    match resource.kind {
        "Pod" => vec![
            NAME,
            col(
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            AGE,
            col("IP", "string", 1, "IP address allocated to the pod."),
            col(
                "Node",
                "string",
                1,
                "Name of the node the pod is assigned to.",
            ),
            col(
                "Nominated Node",
                "string",
                1,
                "Name of the node where the pod is nominated to run.",
            ),
            col(
                "Readiness Gates",
                "string",
                1,
                "The readiness gates of the pod.",
            ),
        ],
        "Deployment" => vec![
            NAME,
            col("Ready", "string", 0, "Number of the pod with ready state."),
            col(
                "Up-to-date",
                "integer",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            col(
                "Available",
                "integer",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            AGE,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col("Selector", "string", 1, "Label selector for pods."),
        ],
        "ReplicaSet" => vec![
            NAME,
            col("Desired", "integer", 0, "Number of desired pods."),
            col("Current", "integer", 0, "Number of actual replicas."),
            col("Ready", "integer", 0, "The number of ready replicas."),
            AGE,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col("Selector", "string", 1, "Label selector for pods."),
        ],
        "StatefulSet" => vec![
            NAME,
            col("Ready", "string", 0, "Number of the pod with ready state."),
            AGE,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
        ],
        "DaemonSet" => vec![
            NAME,
            col(
                "Desired",
                "integer",
                0,
                "The total number of nodes that should be running the daemon pod.",
            ),
            col(
                "Current",
                "integer",
                0,
                "The number of nodes running at least one daemon pod.",
            ),
            col(
                "Ready",
                "integer",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
            ),
            col(
                "Up-to-date",
                "integer",
                0,
                "The total number of nodes that are running updated daemon pod.",
            ),
            col(
                "Available",
                "integer",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.",
            ),
            col(
                "Node Selector",
                "string",
                0,
                "NodeSelector is a selector which must be true for the pod to fit on a node.",
            ),
            AGE,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col("Selector", "string", 1, "Label selector for pods."),
        ],
        "Namespace" => vec![
            NAME,
            col("Status", "string", 0, "The status of the namespace."),
            AGE,
        ],
        "Service" => vec![
            NAME,
            col("Type", "string", 0, "The type of the service."),
            col("Cluster-IP", "string", 0, "The cluster IP of the service."),
            col(
                "External-IP",
                "string",
                0,
                "The external IP of the service.",
            ),
            col("Port(s)", "string", 0, "The ports of the service."),
            AGE,
            col("Selector", "string", 1, "The selector of the service."),
        ],
        "Node" => vec![
            NAME,
            col("Status", "string", 0, "The status of the node."),
            col("Roles", "string", 0, "The roles of the node."),
            AGE,
            col(
                "Version",
                "string",
                0,
                "Kubelet Version reported by the node.",
            ),
        ],
        "ConfigMap" => vec![NAME, col("Data", "string", 0, "Number of keys."), AGE],
        "PodDisruptionBudget" => vec![
            NAME,
            col(
                "Min Available",
                "string",
                0,
                "The minimum number of pods that must be available.",
            ),
            col(
                "Max Unavailable",
                "string",
                0,
                "The maximum number of pods that may be unavailable.",
            ),
            col(
                "Allowed Disruptions",
                "integer",
                0,
                "Calculated number of pods that may be disrupted at this time.",
            ),
            AGE,
        ],
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
            vec![
                NAME,
                col("Webhooks", "integer", 0, "The number of webhooks."),
                AGE,
            ]
        }
        "ControllerRevision" => vec![
            NAME,
            col("Controller", "string", 0, "The owner of the revision."),
            col("Revision", "integer", 0, "The revision number."),
            AGE,
        ],
        "Event" => vec![
            col(
                "Last Seen",
                "string",
                0,
                "Time since the event was last seen.",
            ),
            col("Type", "string", 0, "Type of this event (Normal, Warning)."),
            col("Reason", "string", 0, "Why the action was taken."),
            col("Object", "string", 0, "The object this event is about."),
            col(
                "Subobject",
                "string",
                1,
                "The part of the object this event is about.",
            ),
            col("Source", "string", 1, "The component reporting this event."),
            col(
                "Message",
                "string",
                0,
                "A human-readable description of the status of this operation.",
            ),
            col(
                "First Seen",
                "string",
                1,
                "Time since the event was first seen.",
            ),
            col(
                "Count",
                "string",
                1,
                "The number of times this event has occurred.",
            ),
            col(
                "Name",
                "string",
                1,
                "Name must be unique within a namespace.",
            ),
        ],
        // The printer columns of Argo's CRD (`manifests/crds/rollout-crd.yaml`).
        "Rollout" => vec![
            NAME,
            col("Desired", "integer", 0, "Number of desired pods"),
            col(
                "Current",
                "integer",
                0,
                "Total number of non-terminated pods targeted by this rollout",
            ),
            col(
                "Up-to-date",
                "integer",
                0,
                "Total number of non-terminated pods targeted by this rollout that have the desired template spec",
            ),
            col(
                "Available",
                "integer",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this rollout",
            ),
            col("Age", "date", 0, "Time since resource was created"),
        ],
        "CronJob" => vec![
            NAME,
            col("Schedule", "string", 0, "The schedule in Cron format."),
            col(
                "Timezone",
                "string",
                0,
                "The time zone name for the schedule.",
            ),
            col(
                "Suspend",
                "boolean",
                0,
                "Whether subsequent executions are suspended.",
            ),
            col(
                "Active",
                "integer",
                0,
                "The number of pointers to currently running jobs.",
            ),
            col(
                "Last Schedule",
                "string",
                0,
                "Information when was the last time the job was successfully scheduled.",
            ),
            AGE,
        ],
        "Job" => vec![
            NAME,
            col("Status", "string", 0, "Status of the job."),
            col(
                "Completions",
                "string",
                0,
                "The completion status of the job.",
            ),
            AGE,
        ],
        // The Gateway API CRDs' additionalPrinterColumns.
        "GatewayClass" => vec![
            NAME,
            col("Controller", "string", 0, ""),
            col("Accepted", "string", 0, ""),
            AGE,
            col("Description", "string", 1, ""),
        ],
        "Gateway" => vec![
            NAME,
            col("Class", "string", 0, ""),
            col("Address", "string", 0, ""),
            col("Programmed", "string", 0, ""),
            AGE,
        ],
        "HTTPRoute" => vec![NAME, col("Hostnames", "string", 0, ""), AGE],
        _ => vec![NAME, AGE],
    }
}

/// A condition's status (`True`, `False`, `Unknown`), or empty.
fn condition_status(obj: &Value, kind: &str) -> String {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        })
        .and_then(|c| c.get("status").and_then(Value::as_str))
        .unwrap_or("")
        .to_string()
}

/// A JSONPath column over a list (`.status.addresses[*].value`): the values
/// joined by commas, as kubectl prints them.
fn joined(obj: &Value, list: &str, field: Option<&str>) -> String {
    obj.pointer(list)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| match field {
                    Some(f) => i.get(f).and_then(Value::as_str),
                    None => i.as_str(),
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn column_definitions(resource: &Resource) -> Value {
    Value::Array(
        columns(resource)
            .iter()
            .map(|c| {
                let mut def = json!({
                    "name": c.name,
                    "type": c.kind,
                    "format": "",
                    "description": c.description,
                    "priority": c.priority,
                });
                if c.name == "Name" {
                    def["format"] = json!("name");
                }
                def
            })
            .collect(),
    )
}

/// A Table of `objects`. `with_columns: false` leaves the column definitions
/// out, as the API server does for every watch event after the first.
pub fn table<'a>(
    resource: &Resource,
    objects: impl IntoIterator<Item = &'a Value>,
    include: IncludeObject,
    now: DateTime<Utc>,
    list_meta: Value,
    with_columns: bool,
) -> Value {
    let rows: Vec<Value> = objects
        .into_iter()
        .map(|o| row(resource, o, include, now))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": if with_columns { column_definitions(resource) } else { json!([]) },
        "rows": rows,
    })
}

fn row(resource: &Resource, obj: &Value, include: IncludeObject, now: DateTime<Utc>) -> Value {
    let mut row = json!({"cells": cells(resource, obj, now)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Object => row["object"] = obj.clone(),
        IncludeObject::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
            })
        }
    }
    row
}

fn s<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

fn n(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(value: Option<&str>) -> String {
    value
        .filter(|v| !v.is_empty())
        .unwrap_or("<none>")
        .to_string()
}

fn cells(resource: &Resource, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let name = json!(s(obj, "/metadata/name").unwrap_or(""));
    let age = json!(age(obj, now));
    match resource.kind {
        "Pod" => {
            let (ready, total) = pod_ready(obj);
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(obj)),
                json!(pod_restarts(obj).to_string()),
                age,
                json!(or_none(s(obj, "/status/podIP"))),
                json!(or_none(s(obj, "/spec/nodeName"))),
                json!(or_none(s(obj, "/status/nominatedNodeName"))),
                json!("<none>"),
            ]
        }
        "Deployment" => vec![
            name,
            json!(format!(
                "{}/{}",
                n(obj, "/status/readyReplicas"),
                replicas(obj)
            )),
            json!(n(obj, "/status/updatedReplicas")),
            json!(n(obj, "/status/availableReplicas")),
            age,
            json!(template_containers(obj, "name")),
            json!(template_containers(obj, "image")),
            json!(selector(obj)),
        ],
        "ReplicaSet" => vec![
            name,
            json!(replicas(obj)),
            json!(n(obj, "/status/replicas")),
            json!(n(obj, "/status/readyReplicas")),
            age,
            json!(template_containers(obj, "name")),
            json!(template_containers(obj, "image")),
            json!(selector(obj)),
        ],
        "StatefulSet" => vec![
            name,
            json!(format!(
                "{}/{}",
                n(obj, "/status/readyReplicas"),
                replicas(obj)
            )),
            age,
            json!(template_containers(obj, "name")),
            json!(template_containers(obj, "image")),
        ],
        "DaemonSet" => vec![
            name,
            json!(n(obj, "/status/desiredNumberScheduled")),
            json!(n(obj, "/status/currentNumberScheduled")),
            json!(n(obj, "/status/numberReady")),
            json!(n(obj, "/status/updatedNumberScheduled")),
            json!(n(obj, "/status/numberAvailable")),
            json!(map_pairs(obj.pointer("/spec/template/spec/nodeSelector"))),
            age,
            json!(template_containers(obj, "name")),
            json!(template_containers(obj, "image")),
            json!(selector(obj)),
        ],
        "Namespace" => vec![
            name,
            json!(s(obj, "/status/phase").unwrap_or("Active")),
            age,
        ],
        "Service" => vec![
            name,
            json!(s(obj, "/spec/type").unwrap_or("ClusterIP")),
            json!(or_none(s(obj, "/spec/clusterIP"))),
            json!(external_ip(obj)),
            json!(service_ports(obj)),
            age,
            json!(map_pairs(obj.pointer("/spec/selector"))),
        ],
        "Node" => vec![
            name,
            json!(node_status(obj)),
            json!(node_roles(obj)),
            age,
            json!(s(obj, "/status/nodeInfo/kubeletVersion").unwrap_or("")),
        ],
        "ConfigMap" => {
            let keys = obj
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + obj
                    .get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, json!(keys.to_string()), age]
        }
        "PodDisruptionBudget" => {
            let text = |p: &str| {
                obj.pointer(p).map_or("N/A".to_string(), |v| {
                    v.as_str().map_or(v.to_string(), str::to_string)
                })
            };
            vec![
                name,
                json!(text("/spec/minAvailable")),
                json!(text("/spec/maxUnavailable")),
                json!(n(obj, "/status/disruptionsAllowed")),
                age,
            ]
        }
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
            vec![
                name,
                json!(
                    obj.get("webhooks")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                ),
                age,
            ]
        }
        "ControllerRevision" => {
            let controller = obj
                .pointer("/metadata/ownerReferences/0")
                .map(|o| format!("{}/{}", lower_kind(o), s(o, "/name").unwrap_or("")))
                .unwrap_or_else(|| "<none>".to_string());
            vec![name, json!(controller), json!(n(obj, "/revision")), age]
        }
        "Event" => {
            let since = |pointer: &str| {
                s(obj, pointer)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| human_duration(now.signed_duration_since(t.with_timezone(&Utc))))
            };
            let last = since("/lastTimestamp")
                .or_else(|| since("/eventTime"))
                .unwrap_or_else(|| self::age(obj, now));
            let first = since("/firstTimestamp").unwrap_or_else(|| last.clone());
            let object = format!(
                "{}/{}",
                s(obj, "/involvedObject/kind").unwrap_or("").to_lowercase(),
                s(obj, "/involvedObject/name").unwrap_or("")
            );
            let source = [s(obj, "/source/component"), s(obj, "/source/host")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                json!(last),
                json!(s(obj, "/type").unwrap_or("")),
                json!(s(obj, "/reason").unwrap_or("")),
                json!(object),
                json!(s(obj, "/involvedObject/fieldPath").unwrap_or("")),
                json!(source),
                json!(s(obj, "/message").unwrap_or("").trim()),
                json!(first),
                json!(
                    obj.get("count")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                        .to_string()
                ),
                name,
            ]
        }
        "Rollout" => {
            // A CRD's cells: the value at each column's path, null when absent.
            let at = |pointer: &str| obj.pointer(pointer).cloned().unwrap_or(Value::Null);
            vec![
                name,
                at("/spec/replicas"),
                at("/status/replicas"),
                at("/status/updatedReplicas"),
                at("/status/availableReplicas"),
                // A `date` column is rendered as an age, as the API server
                // renders a CRD's.
                age,
            ]
        }
        "CronJob" => {
            let last = s(obj, "/status/lastScheduleTime")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| human_duration(now.signed_duration_since(t.with_timezone(&Utc))))
                .unwrap_or_else(|| "<none>".to_string());
            vec![
                name,
                json!(s(obj, "/spec/schedule").unwrap_or("")),
                json!(or_none(s(obj, "/spec/timeZone"))),
                json!(
                    obj.pointer("/spec/suspend")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                ),
                json!(
                    obj.pointer("/status/active")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                ),
                json!(last),
                age,
            ]
        }
        "Job" => {
            let succeeded = n(obj, "/status/succeeded");
            let completions = obj
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let status = job_status(obj);
            vec![
                name,
                json!(status),
                json!(format!("{succeeded}/{completions}")),
                age,
            ]
        }
        "GatewayClass" => vec![
            name,
            json!(s(obj, "/spec/controllerName").unwrap_or("")),
            json!(condition_status(obj, "Accepted")),
            age,
            json!(s(obj, "/spec/description").unwrap_or("")),
        ],
        "Gateway" => vec![
            name,
            json!(s(obj, "/spec/gatewayClassName").unwrap_or("")),
            json!(joined(obj, "/status/addresses", Some("value"))),
            json!(condition_status(obj, "Programmed")),
            age,
        ],
        "HTTPRoute" => {
            let hostnames: Vec<Value> = obj
                .pointer("/spec/hostnames")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let shown = if hostnames.is_empty() {
                String::new()
            } else {
                Value::Array(hostnames).to_string()
            };
            vec![name, json!(shown), age]
        }
        _ => vec![name, age],
    }
}

fn lower_kind(owner: &Value) -> String {
    let kind = s(owner, "/kind").unwrap_or("").to_lowercase();
    match s(owner, "/apiVersion").and_then(|v| v.split_once('/')) {
        Some((group, _)) => format!("{kind}.{group}"),
        None => kind,
    }
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn template_containers(obj: &Value, field: &str) -> String {
    obj.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get(field).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn map_pairs(map: Option<&Value>) -> String {
    let pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        "<none>".to_string()
    } else {
        pairs.join(",")
    }
}

fn selector(obj: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
    {
        parts.extend(
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
        );
    }
    if let Some(exprs) = obj
        .pointer("/spec/selector/matchExpressions")
        .and_then(Value::as_array)
    {
        for e in exprs {
            let key = s(e, "/key").unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            parts.push(match s(e, "/operator").unwrap_or("") {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_string(),
                "DoesNotExist" => format!("!{key}"),
                other => format!("{key} {other}"),
            });
        }
    }
    if parts.is_empty() {
        "<none>".to_string()
    } else {
        parts.join(",")
    }
}

fn is_restartable_init(c: &Value) -> bool {
    c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}

/// Ready containers over containers, counting native sidecars (restartable
/// init containers) as kubectl 1.29+ does.
fn pod_ready(pod: &Value) -> (usize, usize) {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let sidecars: Vec<&str> = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter(|c| is_restartable_init(c))
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let ready_in = |pointer: &str, only: Option<&[&str]>| {
        pod.pointer(pointer)
            .and_then(Value::as_array)
            .map_or(0, |st| {
                st.iter()
                    .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                    .filter(|c| {
                        only.is_none_or(|names| {
                            c.get("name")
                                .and_then(Value::as_str)
                                .is_some_and(|n| names.contains(&n))
                        })
                    })
                    .count()
            })
    };
    let ready = ready_in("/status/containerStatuses", None)
        + ready_in("/status/initContainerStatuses", Some(&sidecars));
    (ready, containers + sidecars.len())
}

fn pod_restarts(pod: &Value) -> i64 {
    ["/status/containerStatuses", "/status/initContainerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .map(|c| c.get("restartCount").and_then(Value::as_i64).unwrap_or(0))
        .sum()
}

/// The STATUS column: the phase, refined by a waiting or terminated
/// container's reason, init progress, and deletion.
fn pod_status(pod: &Value) -> String {
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".to_string();
    }
    let mut reason = s(pod, "/status/reason")
        .or_else(|| s(pod, "/status/phase"))
        .unwrap_or("Pending")
        .to_string();
    let init_specs: Vec<&Value> = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter(|c| !is_restartable_init(c)).collect())
        .unwrap_or_default();
    if let Some(statuses) = pod
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array)
    {
        let plain: Vec<&Value> = statuses
            .iter()
            .filter(|st| {
                init_specs
                    .iter()
                    .any(|spec| spec.get("name") == st.get("name"))
            })
            .collect();
        for (i, st) in plain.iter().enumerate() {
            if let Some(code) = st
                .pointer("/state/terminated/exitCode")
                .and_then(Value::as_i64)
            {
                if code == 0 {
                    continue;
                }
                return format!(
                    "Init:{}",
                    s(st, "/state/terminated/reason").unwrap_or("Error")
                );
            }
            if let Some(why) = s(st, "/state/waiting/reason").filter(|r| *r != "PodInitializing") {
                return format!("Init:{why}");
            }
            return format!("Init:{i}/{}", init_specs.len());
        }
    }
    if let Some(statuses) = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
    {
        for st in statuses.iter().rev() {
            if let Some(why) = s(st, "/state/waiting/reason") {
                reason = why.to_string();
            } else if let Some(why) = s(st, "/state/terminated/reason") {
                reason = why.to_string();
            }
        }
    }
    reason
}

fn external_ip(svc: &Value) -> String {
    let ingress: Vec<&str> = svc
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .map(|i| {
            i.iter()
                .filter_map(|e| s(e, "/ip").or_else(|| s(e, "/hostname")))
                .collect()
        })
        .unwrap_or_default();
    let external: Vec<&str> = svc
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let all: Vec<&str> = ingress.into_iter().chain(external).collect();
    if !all.is_empty() {
        return all.join(",");
    }
    match s(svc, "/spec/type") {
        Some("LoadBalancer") => "<pending>".to_string(),
        _ => "<none>".to_string(),
    }
}

fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let port = n(p, "/port");
                    let proto = s(p, "/protocol").unwrap_or("TCP");
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(np) => format!("{port}:{np}/{proto}"),
                        None => format!("{port}/{proto}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    }
}

fn node_status(node: &Value) -> String {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| s(c, "/type") == Some("Ready")))
        .and_then(|c| s(c, "/status"));
    let mut status = match ready {
        Some("True") => "Ready".to_string(),
        _ => "NotReady".to_string(),
    };
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(node: &Value) -> String {
    let roles: Vec<&str> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .collect()
        })
        .unwrap_or_default();
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    }
}

fn job_status(job: &Value) -> &'static str {
    let conditions = job.pointer("/status/conditions").and_then(Value::as_array);
    let has = |t: &str| {
        conditions.is_some_and(|cs| {
            cs.iter()
                .any(|c| s(c, "/type") == Some(t) && s(c, "/status") == Some("True"))
        })
    };
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else {
        "Running"
    }
}

fn age(obj: &Value, now: DateTime<Utc>) -> String {
    match s(obj, "/metadata/creationTimestamp").and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
        Some(created) => human_duration(now.signed_duration_since(created.with_timezone(&Utc))),
        None => "<unknown>".to_string(),
    }
}

/// A duration the way kubectl's AGE column writes it: two significant
/// units while they matter (`5m30s`, `3h10m`, `2d4h`), one after.
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < -1 {
        return "<invalid>".to_string();
    }
    if secs < 0 {
        return "0s".to_string();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        return match secs % 60 {
            0 => format!("{minutes}m"),
            rest => format!("{minutes}m{rest}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            rest => format!("{hours}h{rest}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            rest => format!("{days}d{rest}h"),
        };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if days < 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            rest => format!("{years}y{rest}d"),
        };
    }
    format!("{years}y")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds;

    #[test]
    fn durations_read_like_kubectl_ages() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(-5)), "<invalid>");
        assert_eq!(human_duration(d(59)), "59s");
        assert_eq!(human_duration(d(119)), "119s");
        assert_eq!(human_duration(d(330)), "5m30s");
        assert_eq!(human_duration(d(600)), "10m");
        assert_eq!(human_duration(d(3 * 3600 + 600)), "3h10m");
        assert_eq!(human_duration(d(30 * 3600)), "30h");
        assert_eq!(human_duration(d(52 * 3600)), "2d4h");
        assert_eq!(human_duration(d(400 * 86400)), "400d");
    }

    #[test]
    fn pod_rows_count_native_sidecars_and_show_waiting_reasons() {
        let pod = json!({
            "metadata": {"name": "web-1", "creationTimestamp": "2025-01-01T00:00:00Z", "labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "app"}],
                "initContainers": [{"name": "istio-proxy", "restartPolicy": "Always"}],
                "nodeName": "node-1",
            },
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.7",
                "containerStatuses": [{"name": "app", "ready": false, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
                "initContainerStatuses": [{"name": "istio-proxy", "ready": true, "restartCount": 1}],
            },
        });
        let now = DateTime::parse_from_rfc3339("2025-01-01T00:05:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let t = table(
            kinds::pods(),
            [&pod],
            IncludeObject::Metadata,
            now,
            json!({}),
            true,
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "web-1",
                "1/2",
                "CrashLoopBackOff",
                "3",
                "5m30s",
                "10.0.0.7",
                "node-1",
                "<none>",
                "<none>"
            ])
        );
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["labels"]["app"], "web");
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 9);
    }

    #[test]
    fn deployment_rows_show_ready_over_desired() {
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        let now = DateTime::parse_from_rfc3339("2025-01-01T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let t = table(
            kinds::deployments(),
            [&d],
            IncludeObject::None,
            now,
            json!({}),
            false,
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web", "2/3", 3, 2, "60m", "app", "nginx:1", "app=web"])
        );
        assert!(t["rows"][0].get("object").is_none());
        assert_eq!(t["columnDefinitions"], json!([]));
    }
}
