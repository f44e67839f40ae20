//! Defaults the API server fills into workload and Service specs at write time.
//!
//! Controllers and clients (`kubectl rollout status` reads
//! `updateStrategy.type`) rely on these fields being present, as on a real
//! cluster, so [`crate::world::World`] applies them on create and update.

use serde_json::{Map, Value, json};

use crate::resources::Resource;

/// Fills in the defaults of `obj`'s spec for its kind (in place).
pub fn apply_defaults(resource: &Resource, obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match resource.kind {
        "Deployment" => {
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            let strategy = object_entry(spec, "strategy");
            default(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                let rolling = object_entry(strategy, "rollingUpdate");
                default(rolling, "maxSurge", json!("25%"));
                default(rolling, "maxUnavailable", json!("25%"));
            }
        }
        "ReplicaSet" => default(spec, "replicas", json!(1)),
        "StatefulSet" => {
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            let strategy = object_entry(spec, "updateStrategy");
            default(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                let rolling = object_entry(strategy, "rollingUpdate");
                default(rolling, "partition", json!(0));
            }
        }
        "DaemonSet" => {
            default(spec, "revisionHistoryLimit", json!(10));
            let strategy = object_entry(spec, "updateStrategy");
            default(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                let rolling = object_entry(strategy, "rollingUpdate");
                default(rolling, "maxUnavailable", json!(1));
                default(rolling, "maxSurge", json!(0));
            }
        }
        "Job" => {
            // A Job with neither field runs one pod to one completion; a Job
            // with only `parallelism` is a work queue (completions stay unset).
            let unset =
                |spec: &Map<String, Value>, key: &str| spec.get(key).is_none_or(Value::is_null);
            if unset(spec, "completions") && unset(spec, "parallelism") {
                spec.insert("completions".into(), json!(1));
            }
            default(spec, "parallelism", json!(1));
            default(spec, "backoffLimit", json!(6));
            default(spec, "completionMode", json!("NonIndexed"));
            default(spec, "suspend", json!(false));
        }
        "Service" => {
            default(spec, "type", json!("ClusterIP"));
            default(spec, "sessionAffinity", json!("None"));
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                    default(port, "protocol", json!("TCP"));
                    if let Some(number) = port.get("port").cloned() {
                        default(port, "targetPort", number);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Sets `key` to `value` when it is absent or null.
fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    let entry = map.entry(key).or_insert(Value::Null);
    if entry.is_null() {
        *entry = value;
    }
}

/// The object at `key`, created (or replacing a non-object) when needed.
fn object_entry<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}
