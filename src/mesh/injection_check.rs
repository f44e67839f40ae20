//! Asking the cluster what a new pod would get, and judging its answer.
//!
//! ```text
//! Workload.template ─► probe_pod (a Pod to create with dryRun=All)
//!                         │  (src/api sends it; the webhooks run, nothing is stored)
//!                         ▼
//!            the injected Pod ─► SidecarShape::of_pod
//!                         ▼
//! expectation + shape ─► judge  ─► confirmed | contradicted (a problem naming both answers)
//! running pod's shape ─► sidecar_differences ─► the reasons a stale verdict holds
//! target revision     ─► gate   ─► Ok, or the sentence restart-sidecars refuses with
//! ```
//!
//! The model (`mesh::injection`) computes the answer from the webhooks and the
//! injector's ConfigMap; the API server's answer also reflects what the model
//! cannot see (a second mutating webhook rewriting registries, a changed
//! injection template, an injector that is down). Everything here is pure:
//! plain structs in, verdicts and sentences out.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::mesh::restart::RestartPlan;
use crate::mesh::status::StatusReport;
use crate::mesh::workloads::{Workload, WorkloadKind};
use crate::snapshot::{
    ClusterSnapshot, PodTemplateInfo, ProxyFacts, SIDECAR_STATUS_ANNOTATION, Shared,
    SidecarPlacement,
};

/// The pods `status --verify-injection` creates with `dryRun=All` at once.
pub const PROBE_CONCURRENCY: usize = 8;

/// The whole `istio-proxy` sidecar of a pod, as far as an upgrade cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SidecarShape {
    /// The `istio-proxy` image (`None`: no proxy at all).
    pub image: Option<String>,
    /// Where `istio-proxy` sits (`None` without a proxy).
    pub placement: Option<SidecarPlacement>,
    /// Its resources as compact JSON (`None`: none set).
    pub resources: Option<String>,
    /// `istio-init` and/or `istio-validation`, in that order.
    pub init_steps: Vec<String>,
    /// The revision in `sidecar.istio.io/status`, when written.
    pub revision: Option<String>,
}

impl SidecarShape {
    /// The sidecar of a running pod, from the facts its conversion kept.
    pub fn of_facts(facts: &ProxyFacts) -> Self {
        SidecarShape {
            image: facts.sidecar.as_ref().map(|s| s.image.clone()),
            placement: facts.sidecar.as_ref().map(|s| s.placement),
            resources: facts.sidecar_resources.clone(),
            init_steps: facts.init_steps.clone(),
            revision: facts.status_revision.clone(),
        }
    }

    /// The sidecar of the pod the API server answered a dry-run create with.
    pub fn of_pod(pod: &Pod) -> Self {
        let spec = pod.spec.clone().unwrap_or_default();
        let facts = ProxyFacts::extract(
            pod.metadata.annotations.as_ref(),
            &spec.containers,
            spec.init_containers.as_deref().unwrap_or_default(),
            spec.host_network.unwrap_or(false),
        );
        SidecarShape::of_facts(&facts)
    }

    fn is_injected(&self) -> bool {
        self.image.is_some()
    }
}

/// The pod to create with `dryRun=All` for a workload's template: its
/// labels, the annotations the snapshot keeps (the injection ones), its
/// containers and `hostNetwork`, in the workload's namespace.
pub fn probe_pod(namespace: &str, workload: &str, template: &PodTemplateInfo) -> Pod {
    let containers = template
        .containers
        .iter()
        .map(|c| Container {
            name: c.name.clone(),
            image: Some(c.image.clone()),
            ports: (!c.ports.is_empty()).then(|| {
                c.ports
                    .iter()
                    .map(|p| ContainerPort {
                        name: p.name.clone(),
                        container_port: p.container_port,
                        ..ContainerPort::default()
                    })
                    .collect()
            }),
            ..Container::default()
        })
        .collect();
    let mut annotations: BTreeMap<String, String> = template.annotations.clone();
    annotations.remove(SIDECAR_STATUS_ANNOTATION);
    Pod {
        metadata: ObjectMeta {
            name: Some(probe_name(workload)),
            namespace: Some(namespace.to_string()),
            labels: Some(template.labels.to_labels()),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers,
            host_network: template.host_network.then_some(true),
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// `<workload>-mesh-upgrade-probe`, cut to a valid pod name.
fn probe_name(workload: &str) -> String {
    const SUFFIX: &str = "-mesh-upgrade-probe";
    let keep = 253 - SUFFIX.len();
    let base: String = workload.chars().take(keep).collect();
    format!("{}{SUFFIX}", base.trim_end_matches('-'))
}

/// What the API server answered a dry-run create with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// The pod as admitted (injected or not).
    Admitted(SidecarShape),
    /// The create was refused; the server's sentence.
    Refused(String),
    /// The credentials may not create pods (even as a dry run); the 403 sentence.
    Forbidden(String),
}

/// The computed expectation for one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation<'a> {
    /// The revision a new pod should get (`None`: no proxy).
    pub revision: Option<&'a str>,
    /// The `istio-proxy` image it should get, when known.
    pub image: Option<&'a str>,
}

/// The verdict on one workload (`verification` in the status document).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// `confirmed`, `contradicted` or `failed` (the dry run was refused).
    pub verdict: &'static str,
    /// The image the dry-run pod got (`null`: no proxy, or refused).
    pub dry_run_image: Option<String>,
    /// The revision the dry-run pod's status annotation names.
    pub dry_run_revision: Option<String>,
    /// One sentence naming both answers, when they differ or the dry run failed.
    pub problem: Option<String>,
}

/// Compare the computed expectation with the cluster's answer.
pub fn judge(expected: &Expectation<'_>, answer: &ProbeAnswer) -> Verification {
    let shape = match answer {
        ProbeAnswer::Refused(error) | ProbeAnswer::Forbidden(error) => {
            return Verification {
                verdict: "failed",
                dry_run_image: None,
                dry_run_revision: None,
                problem: Some(format!("the dry-run pod was refused: {error}")),
            };
        }
        ProbeAnswer::Admitted(shape) => shape,
    };
    let computed = match (expected.revision, expected.image) {
        (None, _) => "no proxy".to_string(),
        (Some(rev), Some(image)) => format!("{image} (revision {rev})"),
        (Some(rev), None) => format!("a proxy of revision {rev}"),
    };
    let answered = match (&shape.image, &shape.revision) {
        (None, _) => "no proxy".to_string(),
        (Some(image), Some(rev)) => format!("{image} (revision {rev})"),
        (Some(image), None) => image.clone(),
    };
    let agrees = match (expected.revision, &shape.image) {
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some(rev), Some(image)) => {
            expected.image.is_none_or(|e| e == image.as_str())
                && shape.revision.as_deref().is_none_or(|r| r == rev)
        }
    };
    Verification {
        verdict: if agrees { "confirmed" } else { "contradicted" },
        dry_run_image: shape.image.clone(),
        dry_run_revision: shape.revision.clone(),
        problem: (!agrees).then(|| {
            format!("computed {computed}, but the API server's dry run injects {answered}")
        }),
    }
}

/// Every way a running pod's sidecar differs from what a new pod gets now:
/// why a restart changes it. Empty when they are the same.
pub fn sidecar_differences(running: &SidecarShape, injected: &SidecarShape) -> Vec<String> {
    let mut reasons = Vec::new();
    if !injected.is_injected() {
        if running.is_injected() {
            reasons.push("a new pod gets no proxy".to_string());
        }
        return reasons;
    }
    let Some(running_image) = &running.image else {
        reasons.push(format!(
            "the pod runs no proxy; a new pod gets {}",
            injected.image.as_deref().unwrap_or_default()
        ));
        return reasons;
    };
    if Some(running_image) != injected.image.as_ref() {
        reasons.push(format!(
            "proxy image {running_image} → {}",
            injected.image.as_deref().unwrap_or_default()
        ));
    }
    if running.revision.is_some()
        && injected.revision.is_some()
        && running.revision != injected.revision
    {
        reasons.push(format!(
            "revision {} → {}",
            running.revision.as_deref().unwrap_or_default(),
            injected.revision.as_deref().unwrap_or_default()
        ));
    }
    if running.placement != injected.placement {
        reasons.push(format!(
            "{} → {}",
            placement_words(running.placement),
            placement_words(injected.placement)
        ));
    }
    if running.resources != injected.resources {
        reasons.push(format!(
            "proxy resources {} → {}",
            running.resources.as_deref().unwrap_or("none"),
            injected.resources.as_deref().unwrap_or("none")
        ));
    }
    if running.init_steps != injected.init_steps {
        reasons.push(format!(
            "init containers {} → {}",
            steps_words(&running.init_steps),
            steps_words(&injected.init_steps)
        ));
    }
    reasons
}

fn placement_words(placement: Option<SidecarPlacement>) -> &'static str {
    match placement {
        Some(SidecarPlacement::Container) => "classic sidecar (a container)",
        Some(SidecarPlacement::NativeSidecar) => {
            "native sidecar (an init container with restartPolicy Always)"
        }
        Some(SidecarPlacement::InitContainer) => "init container without restartPolicy",
        None => "no proxy",
    }
}

fn steps_words(steps: &[String]) -> String {
    if steps.is_empty() {
        "none".to_string()
    } else {
        steps.join(", ")
    }
}

/// `restart-sidecars`' health gate for one target revision: its injector
/// must answer a dry-run create with a proxy. `Err` is the refusal sentence.
pub fn gate(revision: &str, namespace: &str, answer: &ProbeAnswer) -> Result<(), String> {
    match answer {
        ProbeAnswer::Admitted(shape) if shape.is_injected() => Ok(()),
        ProbeAnswer::Admitted(_) => Err(format!(
            "the injector of revision {revision} did not answer: a dry-run pod in namespace {namespace} was created without a proxy; nothing was restarted"
        )),
        ProbeAnswer::Refused(error) => Err(format!(
            "the injector of revision {revision} did not answer a dry-run pod in namespace {namespace} ({error}); nothing was restarted"
        )),
        ProbeAnswer::Forbidden(error) => Err(error.clone()),
    }
}

/// The dry-run pods for a set of workloads: one per distinct (namespace,
/// template), and for each workload the index of its probe.
pub fn plan_probes(workloads: &[Workload]) -> (Vec<Pod>, Vec<usize>) {
    let mut pods = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let index = workloads
        .iter()
        .map(|w| {
            let key = format!("{}\n{:?}", w.namespace, w.template);
            *seen.entry(key).or_insert_with(|| {
                pods.push(probe_pod(&w.namespace, &w.name, &w.template));
                pods.len() - 1
            })
        })
        .collect();
    (pods, index)
}

/// Write the verdicts into the report: each workload's `verification` and
/// `reasons` (a stale pod's sidecar against the dry-run one), and each
/// contradiction or failed dry run as a line of the summary's attention.
/// `facts_of` finds a running pod's proxy facts by its uid.
pub fn apply_verdicts<'a>(
    report: &mut StatusReport,
    workloads: &[Workload],
    probe_of: &[usize],
    answers: &[ProbeAnswer],
    facts_of: impl Fn(&str) -> Option<&'a ProxyFacts>,
) {
    for (workload, probe) in workloads.iter().zip(probe_of) {
        let Some(answer) = answers.get(*probe) else {
            continue;
        };
        let Some(status) = report.workloads.iter_mut().find(|s| {
            s.namespace == workload.namespace
                && s.name == workload.name
                && s.kind == workload.kind.to_string()
        }) else {
            continue;
        };
        let verification = judge(
            &Expectation {
                revision: status.expected_revision.as_deref(),
                image: status.expected_image.as_deref(),
            },
            answer,
        );
        let reasons = match answer {
            ProbeAnswer::Admitted(injected) => workload
                .pods
                .iter()
                .filter(|p| p.stale)
                .find_map(|p| facts_of(&p.uid))
                .map(|facts| sidecar_differences(&SidecarShape::of_facts(facts), injected))
                .unwrap_or_default(),
            ProbeAnswer::Refused(_) | ProbeAnswer::Forbidden(_) => Vec::new(),
        };
        if let Some(problem) = &verification.problem {
            report.summary.attention.push(format!(
                "{}/{}/{}: {problem}",
                status.namespace,
                workload.kind.resource(),
                status.name
            ));
            report.summary.needs_attention = true;
        }
        status.verification = Some(Box::new(verification));
        status.reasons = Some(reasons);
    }
}

/// Where a workload's template is: (namespace, kind, name).
pub type WorkloadKey = (String, WorkloadKind, String);

/// Every workload's pod template, by where it is.
pub type WorkloadTemplates = HashMap<WorkloadKey, Shared<PodTemplateInfo>>;

/// Every workload's pod template, so a plan's actions can be probed later.
pub fn workload_templates(snapshot: &ClusterSnapshot) -> WorkloadTemplates {
    let deployments = snapshot.deployments.iter().map(|d| {
        (
            (
                d.namespace.to_string(),
                WorkloadKind::Deployment,
                d.name.to_string(),
            ),
            d.template.clone(),
        )
    });
    let stateful_sets = snapshot.stateful_sets.iter().map(|s| {
        (
            (
                s.namespace.clone(),
                WorkloadKind::StatefulSet,
                s.name.clone(),
            ),
            s.template.clone(),
        )
    });
    let daemon_sets = snapshot.daemon_sets.iter().map(|d| {
        (
            (d.namespace.clone(), WorkloadKind::DaemonSet, d.name.clone()),
            d.template.clone(),
        )
    });
    let rollouts = snapshot.rollouts.iter().map(|r| {
        (
            (r.namespace.clone(), WorkloadKind::Rollout, r.name.clone()),
            crate::mesh::workloads::rollout_template(snapshot, r),
        )
    });
    deployments
        .chain(stateful_sets)
        .chain(daemon_sets)
        .chain(rollouts)
        .collect()
}

/// One dry-run pod per target revision of a restart plan (from the first
/// action restarted onto it), as (revision, namespace, pod), by revision.
pub fn gate_probes(
    plan: &RestartPlan,
    templates: &WorkloadTemplates,
) -> Vec<(String, String, Pod)> {
    let mut by_revision: BTreeMap<&str, (String, Pod)> = BTreeMap::new();
    for action in &plan.actions {
        if by_revision.contains_key(action.expected_revision.as_str()) {
            continue;
        }
        let key = (
            action.namespace.to_string(),
            action.kind,
            action.name.to_string(),
        );
        if let Some(template) = templates.get(&key) {
            by_revision.insert(
                &action.expected_revision,
                (
                    action.namespace.to_string(),
                    probe_pod(&action.namespace, &action.name, template),
                ),
            );
        }
    }
    by_revision
        .into_iter()
        .map(|(revision, (namespace, pod))| (revision.to_string(), namespace, pod))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{ISTIO_INIT, ISTIO_VALIDATION};

    fn shape(image: &str, revision: &str) -> SidecarShape {
        SidecarShape {
            image: Some(image.to_string()),
            placement: Some(SidecarPlacement::Container),
            resources: None,
            init_steps: vec![ISTIO_INIT.to_string()],
            revision: Some(revision.to_string()),
        }
    }

    const NEW: &str = "docker.io/istio/proxyv2:1.22.3";
    const OLD: &str = "docker.io/istio/proxyv2:1.21.2";

    #[test]
    fn the_same_image_and_revision_confirm_the_expectation() {
        let v = judge(
            &Expectation {
                revision: Some("1-22-3"),
                image: Some(NEW),
            },
            &ProbeAnswer::Admitted(shape(NEW, "1-22-3")),
        );
        assert_eq!(v.verdict, "confirmed");
        assert_eq!(v.problem, None);
        assert_eq!(v.dry_run_image.as_deref(), Some(NEW));
    }

    #[test]
    fn a_mirrored_image_contradicts_the_expectation_naming_both_images() {
        let mirrored = "mirror.example.com/istio/proxyv2:1.22.3";
        let v = judge(
            &Expectation {
                revision: Some("1-22-3"),
                image: Some(NEW),
            },
            &ProbeAnswer::Admitted(shape(mirrored, "1-22-3")),
        );
        assert_eq!(v.verdict, "contradicted");
        let problem = v.problem.unwrap();
        assert!(
            problem.contains(NEW) && problem.contains(mirrored),
            "{problem}"
        );
    }

    #[test]
    fn a_proxy_where_none_was_computed_is_a_contradiction() {
        let v = judge(
            &Expectation {
                revision: None,
                image: None,
            },
            &ProbeAnswer::Admitted(shape(NEW, "1-22-3")),
        );
        assert_eq!(v.verdict, "contradicted");
        assert!(v.problem.unwrap().starts_with("computed no proxy"));
    }

    #[test]
    fn no_proxy_where_none_was_computed_confirms() {
        let v = judge(
            &Expectation {
                revision: None,
                image: None,
            },
            &ProbeAnswer::Admitted(SidecarShape::default()),
        );
        assert_eq!(v.verdict, "confirmed");
    }

    #[test]
    fn a_refused_dry_run_fails_with_the_servers_sentence() {
        let v = judge(
            &Expectation {
                revision: Some("1-22-3"),
                image: Some(NEW),
            },
            &ProbeAnswer::Refused("failed calling webhook".into()),
        );
        assert_eq!(v.verdict, "failed");
        assert!(v.problem.unwrap().contains("failed calling webhook"));
    }

    #[test]
    fn identical_sidecars_have_no_differences() {
        assert!(sidecar_differences(&shape(NEW, "1-22-3"), &shape(NEW, "1-22-3")).is_empty());
    }

    #[test]
    fn the_diff_names_image_revision_placement_resources_and_init_steps() {
        let running = shape(OLD, "1-21-2");
        let injected = SidecarShape {
            image: Some(NEW.into()),
            placement: Some(SidecarPlacement::NativeSidecar),
            resources: Some(r#"{"requests":{"cpu":"100m"}}"#.into()),
            init_steps: vec![ISTIO_VALIDATION.into()],
            revision: Some("1-22-3".into()),
        };
        assert_eq!(
            sidecar_differences(&running, &injected),
            [
                format!("proxy image {OLD} → {NEW}"),
                "revision 1-21-2 → 1-22-3".to_string(),
                "classic sidecar (a container) → native sidecar (an init container with restartPolicy Always)".to_string(),
                r#"proxy resources none → {"requests":{"cpu":"100m"}}"#.to_string(),
                "init containers istio-init → istio-validation".to_string(),
            ]
        );
    }

    #[test]
    fn a_pod_without_proxy_differs_by_the_proxy_a_new_pod_gets() {
        assert_eq!(
            sidecar_differences(&SidecarShape::default(), &shape(NEW, "1-22-3")),
            [format!("the pod runs no proxy; a new pod gets {NEW}")]
        );
    }

    #[test]
    fn the_gate_passes_an_injected_answer_and_refuses_a_failed_one_naming_the_revision() {
        assert_eq!(
            gate(
                "1-22-3",
                "pay",
                &ProbeAnswer::Admitted(shape(NEW, "1-22-3"))
            ),
            Ok(())
        );
        let refusal = gate(
            "1-22-3",
            "pay",
            &ProbeAnswer::Refused("no endpoints".into()),
        )
        .unwrap_err();
        assert!(
            refusal.contains("revision 1-22-3") && refusal.contains("no endpoints"),
            "{refusal}"
        );
        assert!(
            gate(
                "1-22-3",
                "pay",
                &ProbeAnswer::Admitted(SidecarShape::default())
            )
            .is_err()
        );
    }

    #[test]
    fn the_probe_pod_carries_the_templates_labels_annotations_and_containers() {
        let mut template = PodTemplateInfo {
            labels: [("app".to_string(), "cart".to_string())].into(),
            annotations: [(
                "sidecar.istio.io/proxyImage".to_string(),
                "x/y:1".to_string(),
            )]
            .into(),
            containers: vec![crate::snapshot::ContainerImage {
                name: "cart".into(),
                image: "cart:1".into(),
                ports: Vec::new(),
            }],
            sidecar: None,
            host_network: false,
        };
        template.host_network = true;
        let pod = probe_pod("shop", "cart", &template);
        assert_eq!(
            pod.metadata.name.as_deref(),
            Some("cart-mesh-upgrade-probe")
        );
        assert_eq!(pod.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(pod.metadata.labels.unwrap()["app"], "cart");
        assert_eq!(
            pod.metadata.annotations.unwrap()["sidecar.istio.io/proxyImage"],
            "x/y:1"
        );
        let spec = pod.spec.unwrap();
        assert_eq!(spec.containers[0].image.as_deref(), Some("cart:1"));
        assert_eq!(spec.host_network, Some(true));
    }
}
