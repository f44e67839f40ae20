//! Defaults the API server fills into workload and Service specs at write
//! time, as in Kubernetes' `pkg/apis/apps/v1/defaults.go` and friends.
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
        "Pod" => pod_spec_defaults(spec),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            if let Some(pod_spec) = spec
                .get_mut("template")
                .and_then(|t| t.get_mut("spec"))
                .and_then(Value::as_object_mut)
            {
                pod_spec_defaults(pod_spec);
            }
        }
        "CronJob" => {
            if let Some(pod_spec) = spec
                .get_mut("jobTemplate")
                .and_then(|j| j.get_mut("spec"))
                .and_then(|j| j.get_mut("template"))
                .and_then(|t| t.get_mut("spec"))
                .and_then(Value::as_object_mut)
            {
                pod_spec_defaults(pod_spec);
            }
        }
        _ => {}
    }
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
            // As the API server does: `rollingUpdate.partition: 0` appears
            // when the strategy was left out or `rollingUpdate` was given,
            // not for a bare `type: RollingUpdate`. (So `kubectl rollout
            // status` usually reports a "partitioned roll out".)
            let strategy = object_entry(spec, "updateStrategy");
            let typed = strategy
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty());
            if !typed {
                strategy.insert("type".into(), json!("RollingUpdate"));
                object_entry(strategy, "rollingUpdate");
            }
            let rolling_type =
                strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate");
            if let Some(rolling) = strategy
                .get_mut("rollingUpdate")
                .and_then(Value::as_object_mut)
            {
                if rolling_type {
                    default(rolling, "partition", json!(0));
                }
            }
            let retention = object_entry(spec, "persistentVolumeClaimRetentionPolicy");
            default(retention, "whenDeleted", json!("Retain"));
            default(retention, "whenScaled", json!("Retain"));
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
        // `SetDefaults_CronJob` (pkg/apis/batch/v1/defaults.go).
        "CronJob" => {
            default(spec, "concurrencyPolicy", json!("Allow"));
            default(spec, "suspend", json!(false));
            default(spec, "successfulJobsHistoryLimit", json!(3));
            default(spec, "failedJobsHistoryLimit", json!(1));
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

/// Pod spec defaults (`pkg/apis/core/v1/defaults.go`), in pods and pod
/// templates alike. Scripts read them back: the seeds' restart loop toggles
/// `terminationGracePeriodSeconds` between 30 and 31 and expects 30 at first.
fn pod_spec_defaults(spec: &mut Map<String, Value>) {
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds;

    fn defaulted(resource: &Resource, spec: Value) -> Value {
        let mut obj = json!({"spec": spec});
        apply_defaults(resource, &mut obj);
        obj["spec"].take()
    }

    #[test]
    fn a_deployment_gets_a_rolling_update_of_a_quarter_and_a_ten_minute_deadline() {
        let spec = defaulted(kinds::deployments(), json!({}));
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        );
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        let recreate = defaulted(
            kinds::deployments(),
            json!({"strategy": {"type": "Recreate"}}),
        );
        assert_eq!(recreate["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn a_statefulset_gets_partition_zero_only_where_the_api_server_adds_it() {
        let spec = defaulted(kinds::statefulsets(), json!({}));
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        let bare = defaulted(
            kinds::statefulsets(),
            json!({"updateStrategy": {"type": "RollingUpdate"}}),
        );
        assert_eq!(bare["updateStrategy"], json!({"type": "RollingUpdate"}));
        let on_delete = defaulted(
            kinds::statefulsets(),
            json!({"updateStrategy": {"type": "OnDelete"}}),
        );
        assert_eq!(on_delete["updateStrategy"], json!({"type": "OnDelete"}));
    }

    #[test]
    fn a_job_with_neither_count_runs_one_pod_once_and_a_work_queue_keeps_no_completions() {
        let spec = defaulted(kinds::jobs(), json!({}));
        assert_eq!(
            (spec["completions"].clone(), spec["parallelism"].clone()),
            (json!(1), json!(1))
        );
        let queue = defaulted(kinds::jobs(), json!({"parallelism": 3}));
        assert_eq!(queue.get("completions"), None);
    }

    #[test]
    fn pod_templates_get_a_thirty_second_grace_period_unless_they_set_one() {
        let deployment = json!({"spec": {"template": {"spec": {"containers": []}}}});
        let mut obj = deployment.clone();
        apply_defaults(kinds::deployments(), &mut obj);
        assert_eq!(
            obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            30
        );
        let mut pod = json!({"spec": {"terminationGracePeriodSeconds": 5}});
        apply_defaults(kinds::pods(), &mut pod);
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 5);
        assert_eq!(pod["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn service_ports_default_to_tcp_and_their_own_port_as_target() {
        let spec = defaulted(kinds::services(), json!({"ports": [{"port": 80}]}));
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["type"], "ClusterIP");
    }
}
