//! The owners of pods beyond Deployments, StatefulSets and DaemonSets, as
//! the snapshot keeps them: Argo Rollouts' `Rollout`, Jobs and CronJobs.
//!
//! k8s-openapi has no type for a custom resource, so [`Rollout`] is written
//! here from Argo's own (`pkg/apis/rollouts/v1alpha1/types.go` in
//! argoproj/argo-rollouts), with only the fields the plugin reads and
//! writes; it implements k8s-openapi's `Resource` and `Metadata`, so the
//! API layer lists, watches and patches it like any built-in kind. Two of
//! Argo's choices matter to a client: `status.observedGeneration` is a
//! **string** (a number as text since v0.10, a hash before), and
//! `spec.restartAt` / `status.restartedAt` are RFC 3339 times compared as
//! times.

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{
    Labels, OwnerRef, PodTemplateInfo, Shared, controller_of, int_or_string, labels_of, name_of,
    namespace_of, owners_of,
};

/// The label Argo puts on a Rollout's ReplicaSets, their selectors and
/// pods (`DefaultRolloutUniqueLabelKey`).
pub const ROLLOUT_HASH_LABEL: &str = "rollouts-pod-template-hash";

/// Argo Rollouts' `Rollout` (argoproj.io/v1alpha1), the fields the plugin uses.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Rollout {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: RolloutSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RolloutStatus>,
}

impl k8s_openapi::Resource for Rollout {
    const API_VERSION: &'static str = "argoproj.io/v1alpha1";
    const GROUP: &'static str = "argoproj.io";
    const KIND: &'static str = "Rollout";
    const VERSION: &'static str = "v1alpha1";
    const URL_PATH_SEGMENT: &'static str = "rollouts";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::ListableResource for Rollout {
    const LIST_KIND: &'static str = "RolloutList";
}

impl k8s_openapi::Metadata for Rollout {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// `spec` of a Rollout.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<WorkloadRef>,
    #[serde(default)]
    pub strategy: RolloutStrategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// When every pod should have been restarted (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_at: Option<String>,
}

/// `spec.workloadRef`: the workload whose pod template the Rollout runs.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    /// `never` (also when empty), `onsuccess` or `progressively`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<String>,
}

/// `spec.strategy`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<RolloutUpdate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<RolloutUpdate>,
}

/// The part of `canary` and `blueGreen` a restart depends on.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
}

/// `status` of a Rollout.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// A string in Argo (a hash before v0.10); a number is read too.
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub observed_generation: Option<String>,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub updated_replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default)]
    pub available_replicas: i32,
    /// `Healthy`, `Progressing`, `Paused` or `Degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The `spec.restartAt` whose restart finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause_conditions: Vec<PauseCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_pause: Option<bool>,
}

/// One of `status.pauseConditions`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    #[serde(default)]
    pub reason: String,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// An RFC 3339 time as Kubernetes writes it; `None` when absent or unreadable.
pub fn parse_rfc3339(text: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// How a Rollout replaces its pods on a template change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutStrategyKind {
    Canary,
    BlueGreen,
}

impl RolloutStrategyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutStrategyKind::Canary => "Canary",
            RolloutStrategyKind::BlueGreen => "BlueGreen",
        }
    }
}

/// A Rollout, reduced to what classification and restarts need.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: Labels,
    pub generation: i64,
    /// `status.observedGeneration` as written (a string).
    pub observed_generation: Option<String>,
    /// `spec.replicas` (default 1).
    pub desired: i32,
    pub replicas: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub phase: Option<String>,
    pub message: Option<String>,
    /// `spec.paused`, or a pause condition the controller set.
    pub paused: bool,
    pub restart_at: Option<DateTime<Utc>>,
    pub restarted_at: Option<DateTime<Utc>>,
    pub strategy: RolloutStrategyKind,
    /// `maxUnavailable`/`maxSurge` of the strategy as written.
    pub max_unavailable: Option<String>,
    pub max_surge: Option<String>,
    /// `spec.template`, when the Rollout carries one (not with `workloadRef`).
    pub template: Option<Shared<PodTemplateInfo>>,
    pub workload_ref: Option<WorkloadRef>,
}

impl RolloutInfo {
    /// Whether the controller has seen the latest spec: Argo's
    /// `isGenerationObserved` (a non-numeric value, from before v0.10,
    /// counts as seen).
    pub fn generation_observed(&self) -> bool {
        observed(self.observed_generation.as_deref(), self.generation)
    }
}

/// Argo's `isGenerationObserved` over the raw values.
pub fn observed(observed_generation: Option<&str>, generation: i64) -> bool {
    match observed_generation.map(str::parse::<i64>) {
        Some(Ok(observed)) => observed >= generation,
        Some(Err(_)) => true,
        None => generation == 0,
    }
}

impl From<&Rollout> for RolloutInfo {
    fn from(r: &Rollout) -> Self {
        let meta = &r.metadata;
        let status = r.status.clone().unwrap_or_default();
        let (strategy, update) = match (&r.spec.strategy.blue_green, &r.spec.strategy.canary) {
            (Some(bg), _) => (RolloutStrategyKind::BlueGreen, Some(bg)),
            (None, canary) => (RolloutStrategyKind::Canary, canary.as_ref()),
        };
        let template = r
            .spec
            .template
            .as_ref()
            .filter(|t| {
                t.metadata
                    .as_ref()
                    .and_then(|m| m.labels.as_ref())
                    .is_some_and(|l| !l.is_empty())
            })
            .map(|t| Shared::new(PodTemplateInfo::from(t)));
        RolloutInfo {
            namespace: namespace_of(meta),
            name: name_of(meta),
            uid: meta.uid.clone().unwrap_or_default(),
            labels: labels_of(meta),
            generation: meta.generation.unwrap_or(0),
            observed_generation: status.observed_generation.clone(),
            desired: r.spec.replicas.unwrap_or(1),
            replicas: status.replicas,
            updated: status.updated_replicas,
            ready: status.ready_replicas,
            available: status.available_replicas,
            phase: status.phase.clone(),
            message: status.message.clone(),
            paused: r.spec.paused.unwrap_or(false) || !status.pause_conditions.is_empty(),
            restart_at: parse_rfc3339(r.spec.restart_at.as_deref()),
            restarted_at: parse_rfc3339(status.restarted_at.as_deref()),
            strategy,
            max_unavailable: update
                .and_then(|u| u.max_unavailable.as_ref())
                .map(int_or_string),
            max_surge: update.and_then(|u| u.max_surge.as_ref()).map(int_or_string),
            template,
            workload_ref: r.spec.workload_ref.clone(),
        }
    }
}

/// A Job: who owns it and whether it still runs.
#[derive(Clone, Debug, PartialEq)]
pub struct JobInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub owners: Vec<OwnerRef>,
    /// `status.active`.
    pub active: i32,
    /// A `Complete` or `Failed` condition is `True`.
    pub finished: bool,
}

impl JobInfo {
    /// The CronJob that made it, if one did.
    pub fn cron_job(&self) -> Option<&OwnerRef> {
        controller_of(&self.owners).filter(|o| o.kind == "CronJob")
    }
}

impl From<&Job> for JobInfo {
    fn from(j: &Job) -> Self {
        let meta = &j.metadata;
        let status = j.status.as_ref();
        JobInfo {
            namespace: namespace_of(meta),
            name: name_of(meta),
            uid: meta.uid.clone().unwrap_or_default(),
            owners: owners_of(meta),
            active: status.and_then(|s| s.active).unwrap_or(0),
            finished: status
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True"
                    })
                }),
        }
    }
}

/// A CronJob: when its next run comes.
#[derive(Clone, Debug, PartialEq)]
pub struct CronJobInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.schedule` (cron format).
    pub schedule: String,
    pub time_zone: Option<String>,
    /// `spec.suspend`: no run starts until it is resumed.
    pub suspended: bool,
}

impl From<&CronJob> for CronJobInfo {
    fn from(c: &CronJob) -> Self {
        let meta = &c.metadata;
        let spec = c.spec.as_ref();
        CronJobInfo {
            namespace: namespace_of(meta),
            name: name_of(meta),
            uid: meta.uid.clone().unwrap_or_default(),
            schedule: spec.map(|s| s.schedule.clone()).unwrap_or_default(),
            time_zone: spec.and_then(|s| s.time_zone.clone()),
            suspended: spec.and_then(|s| s.suspend).unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rollout_reads_as_argo_writes_it() {
        let rollout: Rollout = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "generation": 3},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
                "strategy": {"blueGreen": {"activeService": "web", "maxUnavailable": 1}},
                "restartAt": "2026-11-23T14:05:09Z",
            },
            "status": {"observedGeneration": "3", "phase": "Healthy", "replicas": 2,
                       "availableReplicas": 2, "restartedAt": "2026-11-23T14:05:09Z",
                       "blueGreen": {"activeSelector": "abc"}},
        }))
        .unwrap();
        let info = RolloutInfo::from(&rollout);
        assert_eq!(info.strategy, RolloutStrategyKind::BlueGreen);
        assert_eq!(info.max_unavailable.as_deref(), Some("1"));
        assert_eq!(info.observed_generation.as_deref(), Some("3"));
        assert!(info.generation_observed());
        assert_eq!(info.restart_at, info.restarted_at);
        assert!(info.restart_at.is_some());
        assert!(info.template.is_some());
        assert_eq!(info.desired, 2);
    }

    #[test]
    fn observed_generation_follows_argos_rule() {
        assert!(observed(Some("4"), 4));
        assert!(observed(Some("5"), 4));
        assert!(!observed(Some("3"), 4));
        // A v0.9 hash: Argo counts it as observed.
        assert!(observed(Some("5f7d9c"), 4));
        assert!(!observed(None, 4));
        let number: RolloutStatus =
            serde_json::from_value(json!({"observedGeneration": 7})).unwrap();
        assert_eq!(number.observed_generation.as_deref(), Some("7"));
    }

    #[test]
    fn a_workload_ref_rollout_has_no_template_of_its_own() {
        let rollout: Rollout = serde_json::from_value(json!({
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                     "strategy": {"canary": {"steps": [{"setWeight": 20}]}}},
        }))
        .unwrap();
        let info = RolloutInfo::from(&rollout);
        assert_eq!(info.template, None);
        assert_eq!(info.strategy, RolloutStrategyKind::Canary);
        assert_eq!(
            info.workload_ref.map(|w| (w.kind, w.name)),
            Some(("Deployment".to_string(), "api".to_string()))
        );
        assert_eq!(info.desired, 1);
    }
}
