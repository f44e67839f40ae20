//! When is a rollout finished? The test `kubectl rollout status` makes, as
//! pure functions over the objects a watch delivers.
//!
//! A condition alone is not enough: right after a template patch the
//! Deployment still says `NewReplicaSetAvailable` from the previous rollout.
//! Each check therefore first requires that the controller has seen the
//! latest spec (`status.observedGeneration >= metadata.generation`), then
//! compares the counts:
//!
//! ```text
//! Deployment   updated == desired, replicas == updated (no old pods), available == desired
//!              Progressing=False/ProgressDeadlineExceeded → failed
//! StatefulSet  (RollingUpdate) updated == desired (minus the partition), ready == available == desired,
//!              currentRevision == updateRevision
//! DaemonSet    updatedNumberScheduled == numberAvailable == desiredNumberScheduled
//! Rollout      (Argo) observedGeneration (a string) == generation, status.restartedAt >= the
//!              restartAt written, phase Healthy; Degraded → failed
//! ```
//!
//! The waiting itself (watches, timeouts) lives in the command; these
//! functions only judge one object, so they are tested on inline YAML.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use serde::Serialize;

use crate::snapshot::Rollout;

/// Where a rollout stands, judged from one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "detail")]
pub enum RolloutProgress {
    /// Still going; the text says what it waits for.
    InProgress(String),
    /// Every replica runs the latest template and is available.
    Complete,
    /// It will not finish by itself (e.g. `ProgressDeadlineExceeded`).
    Failed(String),
}

impl RolloutProgress {
    pub fn is_complete(&self) -> bool {
        matches!(self, RolloutProgress::Complete)
    }
}

fn observed(generation: Option<i64>, observed_generation: Option<i64>) -> bool {
    observed_generation.unwrap_or(0) >= generation.unwrap_or(0)
}

/// The rollout test of a Deployment.
pub fn deployment_progress(d: &Deployment) -> RolloutProgress {
    let Some(status) = &d.status else {
        return RolloutProgress::InProgress("waiting for the controller".into());
    };
    if !observed(d.metadata.generation, status.observed_generation) {
        return RolloutProgress::InProgress("waiting for the controller to see the change".into());
    }
    if let Some(stuck) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return RolloutProgress::Failed(format!(
            "ProgressDeadlineExceeded: {}",
            stuck
                .message
                .as_deref()
                .unwrap_or("the rollout made no progress in time")
        ));
    }
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < desired {
        return RolloutProgress::InProgress(format!("{updated} of {desired} replicas updated"));
    }
    if replicas > updated {
        return RolloutProgress::InProgress(format!(
            "{} old replicas pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return RolloutProgress::InProgress(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    RolloutProgress::Complete
}

/// The rollout test of a StatefulSet with the RollingUpdate strategy
/// (OnDelete sets are rolled pod by pod and never complete on their own).
pub fn stateful_set_progress(s: &StatefulSet) -> RolloutProgress {
    let Some(status) = &s.status else {
        return RolloutProgress::InProgress("waiting for the controller".into());
    };
    if !observed(s.metadata.generation, status.observed_generation) {
        return RolloutProgress::InProgress("waiting for the controller to see the change".into());
    }
    let spec = s.spec.as_ref();
    let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    let partition = spec
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0)
        .max(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(ready);
    if partition > 0 {
        let wanted = (desired - partition).max(0);
        if updated < wanted {
            return RolloutProgress::InProgress(format!(
                "{updated} of {wanted} replicas above the partition updated"
            ));
        }
        return RolloutProgress::Complete;
    }
    if updated < desired {
        return RolloutProgress::InProgress(format!("{updated} of {desired} replicas updated"));
    }
    if ready < desired {
        return RolloutProgress::InProgress(format!("{ready} of {desired} replicas ready"));
    }
    if available < desired {
        return RolloutProgress::InProgress(format!("{available} of {desired} replicas available"));
    }
    if status.update_revision.is_some() && status.current_revision != status.update_revision {
        return RolloutProgress::InProgress("old revision still current".into());
    }
    RolloutProgress::Complete
}

/// The rollout test of a DaemonSet.
pub fn daemon_set_progress(d: &DaemonSet) -> RolloutProgress {
    let Some(status) = &d.status else {
        return RolloutProgress::InProgress("waiting for the controller".into());
    };
    if !observed(d.metadata.generation, status.observed_generation) {
        return RolloutProgress::InProgress("waiting for the controller to see the change".into());
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if updated < desired {
        return RolloutProgress::InProgress(format!("{updated} of {desired} pods updated"));
    }
    if available < desired {
        return RolloutProgress::InProgress(format!("{available} of {desired} pods available"));
    }
    RolloutProgress::Complete
}

/// Whether an Argo Rollout restarted with `spec.restartAt = restart_at`
/// is done: the controller saw the patch (`status.observedGeneration`, a
/// string, equals `metadata.generation`, Argo's `isGenerationObserved`),
/// recorded the restart (`status.restartedAt` at or past `restart_at`, set
/// once no pod older than it is left: `rollout/restart.go`), and calls the
/// Rollout `Healthy` (`status.phase`, which `kubectl argo rollouts status`
/// reads). `Degraded` (aborted, timed out, invalid) will not heal by itself.
pub fn argo_rollout_progress(r: &Rollout, restart_at: DateTime<Utc>) -> RolloutProgress {
    let Some(status) = &r.status else {
        return RolloutProgress::InProgress("waiting for Argo Rollouts' controller".into());
    };
    if !crate::snapshot::RolloutInfo::from(r).generation_observed() {
        return RolloutProgress::InProgress("waiting for the controller to see the change".into());
    }
    let phase = status.phase.as_deref().unwrap_or("");
    let message = status.message.as_deref().filter(|m| !m.is_empty());
    if phase == "Degraded" {
        return RolloutProgress::Failed(format!(
            "Degraded: {}",
            message.unwrap_or("Argo Rollouts reports it cannot finish")
        ));
    }
    let restarted = crate::snapshot::parse_rfc3339(status.restarted_at.as_deref());
    if restarted.is_none_or(|at| at < restart_at) {
        return RolloutProgress::InProgress(format!(
            "Argo is replacing the pods older than restartAt ({} of {} available)",
            status.available_replicas,
            r.spec.replicas.unwrap_or(1)
        ));
    }
    match phase {
        "Healthy" => RolloutProgress::Complete,
        "" => {
            // An Argo older than v1.0 writes no phase: the counts say it.
            let desired = r.spec.replicas.unwrap_or(1);
            if status.updated_replicas >= desired && status.available_replicas >= desired {
                RolloutProgress::Complete
            } else {
                RolloutProgress::InProgress(format!(
                    "{} of {desired} replicas available",
                    status.available_replicas
                ))
            }
        }
        other => RolloutProgress::InProgress(match message {
            Some(message) => format!("{other}: {message}"),
            None => other.to_string(),
        }),
    }
}

#[cfg(test)]
mod argo_tests {
    use super::*;
    use chrono::TimeZone;

    fn rollout(generation: i64, status: serde_json::Value) -> Rollout {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "generation": generation},
            "spec": {"replicas": 2, "restartAt": "2026-11-23T14:05:09Z"},
            "status": status,
        }))
        .expect("a Rollout")
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 14, 5, 9).unwrap()
    }

    #[test]
    fn a_rollout_is_restarted_once_restarted_at_has_reached_the_time_and_it_is_healthy() {
        let done = rollout(
            4,
            serde_json::json!({"observedGeneration": "4", "phase": "Healthy",
                               "restartedAt": "2026-11-23T14:05:09Z", "availableReplicas": 2}),
        );
        assert_eq!(
            argo_rollout_progress(&done, at()),
            RolloutProgress::Complete
        );
        // A later restart also covers this one.
        let later = rollout(
            4,
            serde_json::json!({"observedGeneration": "4", "phase": "Healthy",
                               "restartedAt": "2026-11-23T14:06:00Z"}),
        );
        assert_eq!(
            argo_rollout_progress(&later, at()),
            RolloutProgress::Complete
        );
    }

    #[test]
    fn a_rollout_whose_patch_argo_has_not_seen_is_not_done_even_when_healthy() {
        // Right after the patch: generation 5, the status still generation 4's.
        let r = rollout(
            5,
            serde_json::json!({"observedGeneration": "4", "phase": "Healthy",
                               "restartedAt": "2026-11-23T14:05:09Z"}),
        );
        assert_eq!(
            argo_rollout_progress(&r, at()),
            RolloutProgress::InProgress("waiting for the controller to see the change".into())
        );
    }

    #[test]
    fn a_rollout_still_restarting_or_not_healthy_is_in_progress() {
        let restarting = rollout(
            4,
            serde_json::json!({"observedGeneration": "4", "phase": "Progressing",
                               "message": "rollout is restarting", "availableReplicas": 1,
                               "restartedAt": "2026-11-23T14:00:00Z"}),
        );
        assert_eq!(
            argo_rollout_progress(&restarting, at()),
            RolloutProgress::InProgress(
                "Argo is replacing the pods older than restartAt (1 of 2 available)".into()
            )
        );
        let settling = rollout(
            4,
            serde_json::json!({"observedGeneration": "4", "phase": "Progressing",
                               "message": "updated replicas are still becoming available",
                               "restartedAt": "2026-11-23T14:05:09Z"}),
        );
        assert_eq!(
            argo_rollout_progress(&settling, at()),
            RolloutProgress::InProgress(
                "Progressing: updated replicas are still becoming available".into()
            )
        );
    }

    #[test]
    fn a_degraded_rollout_has_failed() {
        let r = rollout(
            4,
            serde_json::json!({"observedGeneration": "4", "phase": "Degraded",
                               "message": "ProgressDeadlineExceeded: ReplicaSet \"web-1\" has timed out progressing."}),
        );
        assert!(matches!(
            argo_rollout_progress(&r, at()),
            RolloutProgress::Failed(why) if why.starts_with("Degraded: ProgressDeadlineExceeded")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_yaml::from_str(text).expect("valid test YAML")
    }

    const DEPLOYMENT_DONE: &str = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: shop, generation: 4}
spec:
  replicas: 3
  selector: {matchLabels: {app: cart}}
  template: {metadata: {labels: {app: cart}}, spec: {containers: [{name: c, image: x}]}}
status:
  observedGeneration: 4
  replicas: 3
  updatedReplicas: 3
  readyReplicas: 3
  availableReplicas: 3
  conditions:
  - {type: Available, status: 'True', reason: MinimumReplicasAvailable}
  - {type: Progressing, status: 'True', reason: NewReplicaSetAvailable}
";

    #[test]
    fn a_deployment_with_every_replica_updated_and_available_is_complete() {
        assert_eq!(
            deployment_progress(&yaml(DEPLOYMENT_DONE)),
            RolloutProgress::Complete
        );
    }

    #[test]
    fn a_deployment_whose_patch_the_controller_has_not_seen_is_not_complete() {
        // Right after the patch: generation bumped, the counts still those
        // of the previous (finished) rollout.
        let d = DEPLOYMENT_DONE.replace("generation: 4}", "generation: 5}");
        assert_eq!(
            deployment_progress(&yaml(&d)),
            RolloutProgress::InProgress("waiting for the controller to see the change".into())
        );
    }

    #[test]
    fn a_deployment_with_old_replicas_left_is_not_complete() {
        let d = DEPLOYMENT_DONE.replace(
            "  replicas: 3\n  updatedReplicas",
            "  replicas: 4\n  updatedReplicas",
        );
        assert_eq!(
            deployment_progress(&yaml(&d)),
            RolloutProgress::InProgress("1 old replicas pending termination".into())
        );
        let d = DEPLOYMENT_DONE.replace("updatedReplicas: 3", "updatedReplicas: 1");
        assert_eq!(
            deployment_progress(&yaml(&d)),
            RolloutProgress::InProgress("1 of 3 replicas updated".into())
        );
        let d = DEPLOYMENT_DONE.replace("availableReplicas: 3", "availableReplicas: 2");
        assert_eq!(
            deployment_progress(&yaml(&d)),
            RolloutProgress::InProgress("2 of 3 updated replicas available".into())
        );
    }

    #[test]
    fn a_deployment_past_its_progress_deadline_has_failed() {
        let d = DEPLOYMENT_DONE
            .replace("updatedReplicas: 3", "updatedReplicas: 1")
            .replace(
                "{type: Progressing, status: 'True', reason: NewReplicaSetAvailable}",
                "{type: Progressing, status: 'False', reason: ProgressDeadlineExceeded, message: 'ReplicaSet \"cart-7d\" has timed out progressing.'}",
            );
        assert_eq!(
            deployment_progress(&yaml(&d)),
            RolloutProgress::Failed(
                "ProgressDeadlineExceeded: ReplicaSet \"cart-7d\" has timed out progressing."
                    .into()
            )
        );
    }

    #[test]
    fn a_stale_deadline_condition_is_not_read_before_the_controller_catches_up() {
        let d = DEPLOYMENT_DONE
            .replace("generation: 4}", "generation: 5}")
            .replace(
                "{type: Progressing, status: 'True', reason: NewReplicaSetAvailable}",
                "{type: Progressing, status: 'False', reason: ProgressDeadlineExceeded}",
            );
        assert!(matches!(
            deployment_progress(&yaml(&d)),
            RolloutProgress::InProgress(_)
        ));
    }

    const STATEFULSET_ROLLING: &str = "
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop, generation: 2}
spec:
  replicas: 3
  serviceName: db
  selector: {matchLabels: {app: db}}
  template: {metadata: {labels: {app: db}}, spec: {containers: [{name: c, image: x}]}}
  updateStrategy: {type: RollingUpdate}
status:
  observedGeneration: 2
  replicas: 3
  readyReplicas: 3
  availableReplicas: 3
  currentReplicas: 1
  updatedReplicas: 2
  currentRevision: db-6c9
  updateRevision: db-7f4
";

    #[test]
    fn a_stateful_set_is_complete_when_the_update_revision_is_current_everywhere() {
        let s: StatefulSet = yaml(STATEFULSET_ROLLING);
        assert_eq!(
            stateful_set_progress(&s),
            RolloutProgress::InProgress("2 of 3 replicas updated".into())
        );
        let done = STATEFULSET_ROLLING
            .replace("updatedReplicas: 2", "updatedReplicas: 3")
            .replace("currentRevision: db-6c9", "currentRevision: db-7f4");
        assert_eq!(
            stateful_set_progress(&yaml(&done)),
            RolloutProgress::Complete
        );
        let revisions_differ =
            STATEFULSET_ROLLING.replace("updatedReplicas: 2", "updatedReplicas: 3");
        assert_eq!(
            stateful_set_progress(&yaml(&revisions_differ)),
            RolloutProgress::InProgress("old revision still current".into())
        );
        let not_ready = done.replace("readyReplicas: 3", "readyReplicas: 2");
        assert_eq!(
            stateful_set_progress(&yaml(&not_ready)),
            RolloutProgress::InProgress("2 of 3 replicas ready".into())
        );
    }

    #[test]
    fn a_partitioned_stateful_set_is_complete_when_the_pods_above_the_partition_are_updated() {
        let s = STATEFULSET_ROLLING.replace(
            "updateStrategy: {type: RollingUpdate}",
            "updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 1}}",
        );
        assert_eq!(stateful_set_progress(&yaml(&s)), RolloutProgress::Complete);
    }

    const DAEMONSET: &str = "
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop, generation: 3}
spec:
  selector: {matchLabels: {app: agent}}
  template: {metadata: {labels: {app: agent}}, spec: {containers: [{name: c, image: x}]}}
status:
  observedGeneration: 3
  desiredNumberScheduled: 3
  currentNumberScheduled: 3
  numberMisscheduled: 0
  numberReady: 3
  updatedNumberScheduled: 3
  numberAvailable: 3
";

    #[test]
    fn a_daemon_set_is_complete_when_every_scheduled_pod_is_updated_and_available() {
        assert_eq!(
            daemon_set_progress(&yaml(DAEMONSET)),
            RolloutProgress::Complete
        );
        let d = DAEMONSET.replace("updatedNumberScheduled: 3", "updatedNumberScheduled: 2");
        assert_eq!(
            daemon_set_progress(&yaml(&d)),
            RolloutProgress::InProgress("2 of 3 pods updated".into())
        );
        let d = DAEMONSET.replace("numberAvailable: 3", "numberAvailable: 1");
        assert_eq!(
            daemon_set_progress(&yaml(&d)),
            RolloutProgress::InProgress("1 of 3 pods available".into())
        );
        let d = DAEMONSET.replace("generation: 3}", "generation: 4}");
        assert!(matches!(
            daemon_set_progress(&yaml(&d)),
            RolloutProgress::InProgress(_)
        ));
    }
}
