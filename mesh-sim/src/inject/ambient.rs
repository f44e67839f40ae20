//! The ambient data plane's DaemonSets, as Istio's `ztunnel` and
//! `istio-cni` charts render them.
//!
//! | object | chart template | what the sim and the plugin rely on |
//! |---|---|---|
//! | DaemonSet `ztunnel` | `manifests/charts/ztunnel/templates/daemonset.yaml` | selector `app: ztunnel`; pods labelled `app: ztunnel`, `sidecar.istio.io/inject: "false"`, `istio.io/dataplane-mode: none`; container `istio-proxy` with `<hub>/ztunnel:<tag>[-<variant>]`; `XDS_ADDRESS`/`CA_ADDRESS` `istiod[-<rev>].istio-system.svc:15012`; with a revision, the annotation `istio.io/rev` on the DaemonSet and on its pods; `terminationGracePeriodSeconds: 30`; `updateStrategy` from the values (default RollingUpdate, maxSurge 1, maxUnavailable 0) |
//! | DaemonSet `istio-cni-node` | `manifests/charts/istio-cni/templates/daemonset.yaml` | selector `k8s-app: istio-cni-node`; labels `istio.io/rev: <rev or default>`; pods labelled `k8s-app: istio-cni-node`, `sidecar.istio.io/inject: "false"`, `istio.io/dataplane-mode: none`; container `install-cni` with `<hub>/install-cni:<tag>[-<variant>]`; `updateStrategy` RollingUpdate, maxUnavailable 1 |
//!
//! Only what a mesh upgrade looks at is rendered (no volumes, security
//! contexts or probes beyond the readiness path): the sim's kubelet makes a
//! pod Ready after its delay whatever it runs.

use serde_json::{Value, json};

use super::ISTIO_NAMESPACE;

/// How a ztunnel or istio-cni chart is installed.
#[derive(Debug, Clone, PartialEq)]
pub struct AmbientChartOptions {
    /// `hub` (`docker.io/istio`).
    pub hub: String,
    /// `tag`: the Istio version (`1.22.3`).
    pub tag: String,
    /// `variant` (`distroless`), appended to the tag as `-<variant>`.
    pub variant: Option<String>,
    /// `revision`: which istiod the ztunnel talks to (`istiod-<rev>`); for
    /// istio-cni only its `istio.io/rev` label.
    pub revision: Option<String>,
    /// `updateStrategy.type`: `RollingUpdate` (the charts' default) or
    /// `OnDelete` (node-by-node upgrades).
    pub update_strategy: String,
}

impl AmbientChartOptions {
    /// The charts' defaults for Istio `version` from `docker.io/istio`.
    pub fn new(version: &str) -> Self {
        AmbientChartOptions {
            hub: "docker.io/istio".to_string(),
            tag: version.to_string(),
            variant: None,
            revision: None,
            update_strategy: "RollingUpdate".to_string(),
        }
    }

    pub fn revision(mut self, revision: &str) -> Self {
        self.revision = Some(revision.to_string());
        self
    }

    pub fn on_delete(mut self) -> Self {
        self.update_strategy = "OnDelete".to_string();
        self
    }

    fn image(&self, name: &str) -> String {
        match &self.variant {
            Some(v) => format!("{}/{name}:{}-{v}", self.hub, self.tag),
            None => format!("{}/{name}:{}", self.hub, self.tag),
        }
    }

    fn chart_labels(&self, chart: &str) -> Value {
        json!({
            "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/instance": chart,
            "app.kubernetes.io/part-of": "istio",
            "app.kubernetes.io/version": self.tag,
            "helm.sh/chart": format!("{chart}-{}", self.tag),
        })
    }
}

/// The pod label of every ztunnel pod (`app: ztunnel`).
pub const ZTUNNEL_APP: &str = "ztunnel";
/// The pod label of every istio-cni pod (`k8s-app: istio-cni-node`).
pub const ISTIO_CNI_APP: &str = "istio-cni-node";

fn merge(into: &mut Value, from: &Value) {
    if let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in from {
            into.insert(k.clone(), v.clone());
        }
    }
}

/// The chart's tolerations (both charts): every taint tolerated, so the
/// DaemonSets run on every node.
fn tolerations() -> Value {
    json!([
        {"effect": "NoSchedule", "operator": "Exists"},
        {"key": "CriticalAddonsOnly", "operator": "Exists"},
        {"effect": "NoExecute", "operator": "Exists"},
    ])
}

/// The `ztunnel` chart's DaemonSet.
pub fn ztunnel_daemonset(opts: &AmbientChartOptions) -> Value {
    let mut labels = json!({"app.kubernetes.io/name": "ztunnel"});
    merge(&mut labels, &opts.chart_labels("ztunnel"));
    let mut annotations = json!({});
    let mut pod_annotations = json!({
        "sidecar.istio.io/inject": "false",
        "prometheus.io/port": "15020",
        "prometheus.io/scrape": "true",
    });
    if let Some(rev) = &opts.revision {
        annotations["istio.io/rev"] = json!(rev);
        pod_annotations["istio.io/rev"] = json!(rev);
    }
    let mut pod_labels = json!({
        "sidecar.istio.io/inject": "false",
        "istio.io/dataplane-mode": "none",
        "app": ZTUNNEL_APP,
        "app.kubernetes.io/name": "ztunnel",
    });
    merge(&mut pod_labels, &opts.chart_labels("ztunnel"));
    let istiod = match &opts.revision {
        Some(rev) => format!("istiod-{rev}.{ISTIO_NAMESPACE}.svc:15012"),
        None => format!("istiod.{ISTIO_NAMESPACE}.svc:15012"),
    };
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "ztunnel",
            "namespace": ISTIO_NAMESPACE,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "updateStrategy": update_strategy(&opts.update_strategy, Some(1), 0),
            "selector": {"matchLabels": {"app": ZTUNNEL_APP}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "serviceAccountName": "ztunnel",
                    "tolerations": tolerations(),
                    "containers": [{
                        "name": "istio-proxy",
                        "image": opts.image("ztunnel"),
                        "ports": [{"containerPort": 15020, "name": "ztunnel-stats", "protocol": "TCP"}],
                        "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}},
                        "readinessProbe": {"httpGet": {"port": 15021, "path": "/healthz/ready"}},
                        "args": ["proxy", "ztunnel"],
                        "env": [
                            {"name": "CA_ADDRESS", "value": istiod},
                            {"name": "XDS_ADDRESS", "value": istiod},
                            {"name": "RUST_LOG", "value": "info"},
                            {"name": "INPOD_ENABLED", "value": "true"},
                            {"name": "TERMINATION_GRACE_PERIOD_SECONDS", "value": "30"},
                            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        ],
                    }],
                    "priorityClassName": "system-node-critical",
                    "terminationGracePeriodSeconds": 30,
                },
            },
        },
    })
}

/// The `istio-cni` chart's DaemonSet (ambient profile).
pub fn istio_cni_daemonset(opts: &AmbientChartOptions) -> Value {
    let mut labels = json!({
        "k8s-app": ISTIO_CNI_APP,
        "release": "istio-cni",
        "istio.io/rev": opts.revision.as_deref().unwrap_or("default"),
        "install.operator.istio.io/owning-resource": "unknown",
        "operator.istio.io/component": "Cni",
        "app.kubernetes.io/name": "istio-cni",
    });
    merge(&mut labels, &opts.chart_labels("istio-cni"));
    let mut pod_labels = json!({
        "k8s-app": ISTIO_CNI_APP,
        "sidecar.istio.io/inject": "false",
        "istio.io/dataplane-mode": "none",
        "app.kubernetes.io/name": "istio-cni",
    });
    merge(&mut pod_labels, &opts.chart_labels("istio-cni"));
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "istio-cni-node", "namespace": ISTIO_NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": ISTIO_CNI_APP}},
            "updateStrategy": update_strategy(&opts.update_strategy, None, 1),
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        "sidecar.istio.io/inject": "false",
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": "15014",
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": tolerations(),
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "istio-cni",
                    "terminationGracePeriodSeconds": 30,
                    "containers": [{
                        "name": "install-cni",
                        "image": opts.image("install-cni"),
                        "ports": [{"containerPort": 15014, "name": "metrics", "protocol": "TCP"}],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8000}},
                        "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}},
                    }],
                },
            },
        },
    })
}

/// `updateStrategy` as the values render it: RollingUpdate with the
/// chart's surge and unavailability, or OnDelete alone.
fn update_strategy(kind: &str, max_surge: Option<i64>, max_unavailable: i64) -> Value {
    if kind == "OnDelete" {
        return json!({"type": "OnDelete"});
    }
    let mut rolling = json!({"maxUnavailable": max_unavailable});
    if let Some(surge) = max_surge {
        rolling["maxSurge"] = json!(surge);
    }
    json!({"type": "RollingUpdate", "rollingUpdate": rolling})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ztunnel_talks_to_its_revisions_istiod_and_says_so_in_annotations() {
        let ds = ztunnel_daemonset(&AmbientChartOptions::new("1.23.1").revision("1-23-1"));
        assert_eq!(ds["metadata"]["annotations"]["istio.io/rev"], "1-23-1");
        let template = &ds["spec"]["template"];
        assert_eq!(
            template["metadata"]["annotations"]["istio.io/rev"],
            "1-23-1"
        );
        assert_eq!(template["metadata"]["labels"]["app"], "ztunnel");
        let container = &template["spec"]["containers"][0];
        assert_eq!(container["name"], "istio-proxy");
        assert_eq!(container["image"], "docker.io/istio/ztunnel:1.23.1");
        assert_eq!(
            container["env"][1],
            json!({"name": "XDS_ADDRESS", "value": "istiod-1-23-1.istio-system.svc:15012"})
        );
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
        );
        assert_eq!(template["spec"]["terminationGracePeriodSeconds"], 30);
    }

    #[test]
    fn an_unrevisioned_ztunnel_talks_to_istiod_and_on_delete_is_the_whole_strategy() {
        let ds = ztunnel_daemonset(&AmbientChartOptions::new("1.22.3").on_delete());
        assert!(ds["metadata"]["annotations"].get("istio.io/rev").is_none());
        assert_eq!(
            ds["spec"]["template"]["spec"]["containers"][0]["env"][1]["value"],
            "istiod.istio-system.svc:15012"
        );
        assert_eq!(ds["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    }

    #[test]
    fn istio_cni_is_labelled_with_its_revision_or_default() {
        let ds = istio_cni_daemonset(&AmbientChartOptions::new("1.22.3"));
        assert_eq!(ds["metadata"]["name"], "istio-cni-node");
        assert_eq!(ds["metadata"]["labels"]["istio.io/rev"], "default");
        assert_eq!(
            ds["spec"]["template"]["spec"]["containers"][0]["image"],
            "docker.io/istio/install-cni:1.22.3"
        );
        let ds = istio_cni_daemonset(&AmbientChartOptions::new("1.22.3").revision("1-22-3"));
        assert_eq!(ds["metadata"]["labels"]["istio.io/rev"], "1-22-3");
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}})
        );
    }
}
