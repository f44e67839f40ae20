//! Chainable builders of snapshots for the model's unit tests (no cluster).
//!
//! [`ClusterFixture`] installs control-plane revisions and tags with the same
//! webhook configurations Istio's charts and `istioctl tag set` generate (see
//! mesh-facts), so tests exercise the real selector logic; workloads come
//! with their ReplicaSets and pods, each pod carrying the proxy a
//! [`ProxySpec`] describes.

use crate::snapshot::{
    ClusterSnapshot, ContainerImage, ContainerPortInfo, DaemonSetInfo, DeploymentInfo, EndpointRef,
    EndpointSliceInfo, InjectionPolicyConfig, InjectorConfigInfo, IstiodInfo, LabelMap,
    LabelMatcher, Labels, NamespaceInfo, OwnerRef, PdbInfo, PodInfo, PodTemplateInfo, ProxyFacts,
    ReplicaSetInfo, Scope, ServiceInfo, ServicePortInfo, SidecarContainer, SidecarPlacement,
    StatefulSetInfo, WebhookConfigurationInfo, WebhookInfo, WebhookRule, WebhookService,
};
use chrono::{DateTime, TimeZone, Utc};
use kube::core::{Expression, Selector};

mod owners;
pub use owners::{ROLLOUT_HASH, RolloutFixture};

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A namespace with labels (and the `kubernetes.io/metadata.name` the API server adds).
pub fn namespace(name: &str, pairs: &[(&str, &str)]) -> NamespaceInfo {
    let mut l = labels(pairs);
    l.insert("kubernetes.io/metadata.name".into(), name.into());
    NamespaceInfo {
        name: name.into(),
        labels: l,
        ..NamespaceInfo::default()
    }
}

fn matcher(exprs: Vec<Expression>) -> LabelMatcher {
    let selector: Selector = exprs.into_iter().collect();
    let label_selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        selector.into();
    LabelMatcher::from_label_selector(Some(&label_selector), LabelMatcher::nothing())
}

fn set(values: &[&str]) -> std::collections::BTreeSet<String> {
    values.iter().map(|v| v.to_string()).collect()
}

fn pods_create_rule() -> WebhookRule {
    WebhookRule {
        operations: vec!["CREATE".into()],
        api_groups: vec!["".into()],
        api_versions: vec!["v1".into()],
        resources: vec!["pods".into()],
        scope: "*".into(),
    }
}

fn webhook(
    name: &str,
    service: &str,
    namespace_selector: LabelMatcher,
    object_selector: LabelMatcher,
) -> WebhookInfo {
    WebhookInfo {
        name: name.into(),
        rules: vec![pods_create_rule()],
        raw_namespace_selector: namespace_selector.to_json(),
        raw_object_selector: object_selector.to_json(),
        namespace_selector,
        object_selector,
        failure_policy: "Fail".into(),
        service: Some(WebhookService {
            namespace: "istio-system".into(),
            name: service.into(),
            path: Some("/inject".into()),
            port: Some(443),
        }),
        url: None,
        has_match_conditions: false,
        ..WebhookInfo::default()
    }
}

/// The webhooks Istio generates for a revision or tag `name` served by
/// `service`; `default` adds the `namespace.` and `object.` webhooks.
pub fn istio_webhooks(name: &str, service: &str, default: bool) -> Vec<WebhookInfo> {
    let not_false = || Expression::NotIn("sidecar.istio.io/inject".into(), set(&["false"]));
    let mut hooks = vec![
        webhook(
            "rev.namespace.sidecar-injector.istio.io",
            service,
            matcher(vec![
                Expression::In("istio.io/rev".into(), set(&[name])),
                Expression::DoesNotExist("istio-injection".into()),
            ]),
            matcher(vec![not_false()]),
        ),
        webhook(
            "rev.object.sidecar-injector.istio.io",
            service,
            matcher(vec![
                Expression::DoesNotExist("istio.io/rev".into()),
                Expression::DoesNotExist("istio-injection".into()),
            ]),
            matcher(vec![
                not_false(),
                Expression::In("istio.io/rev".into(), set(&[name])),
            ]),
        ),
    ];
    if default {
        hooks.push(webhook(
            "namespace.sidecar-injector.istio.io",
            service,
            matcher(vec![Expression::In(
                "istio-injection".into(),
                set(&["enabled"]),
            )]),
            matcher(vec![not_false()]),
        ));
        hooks.push(webhook(
            "object.sidecar-injector.istio.io",
            service,
            matcher(vec![
                Expression::DoesNotExist("istio-injection".into()),
                Expression::DoesNotExist("istio.io/rev".into()),
            ]),
            matcher(vec![
                Expression::In("sidecar.istio.io/inject".into(), set(&["true"])),
                Expression::DoesNotExist("istio.io/rev".into()),
            ]),
        ));
    }
    hooks
}

/// The proxy image a revision of `version` injects.
pub fn proxy_image(version: &str) -> String {
    format!("docker.io/istio/proxyv2:{version}")
}

/// What proxy a fixture pod runs.
#[derive(Clone, Debug, PartialEq)]
pub enum ProxySpec {
    None,
    Istio {
        revision: String,
        version: String,
        native: bool,
        custom_image: bool,
    },
}

impl ProxySpec {
    pub fn none() -> Self {
        ProxySpec::None
    }
    pub fn istio(revision: &str, version: &str) -> Self {
        ProxySpec::Istio {
            revision: revision.into(),
            version: version.into(),
            native: false,
            custom_image: false,
        }
    }
    pub fn native(revision: &str, version: &str) -> Self {
        ProxySpec::Istio {
            revision: revision.into(),
            version: version.into(),
            native: true,
            custom_image: false,
        }
    }
    pub fn custom(revision: &str, version: &str) -> Self {
        ProxySpec::Istio {
            revision: revision.into(),
            version: version.into(),
            native: false,
            custom_image: true,
        }
    }

    fn facts(&self) -> ProxyFacts {
        match self {
            ProxySpec::None => ProxyFacts::default(),
            ProxySpec::Istio {
                revision,
                version,
                native,
                custom_image,
            } => ProxyFacts {
                sidecar: Some(SidecarContainer {
                    image: proxy_image(version),
                    placement: if *native {
                        SidecarPlacement::NativeSidecar
                    } else {
                        SidecarPlacement::Container
                    },
                }),
                has_status_annotation: true,
                status_revision: Some(revision.clone()),
                custom_image: custom_image.then(|| proxy_image(version)),
                ..ProxyFacts::default()
            },
        }
    }
}

/// A pod.
pub struct PodFixture(PodInfo);

impl PodFixture {
    pub fn new(namespace: &str, name: &str) -> Self {
        PodFixture(PodInfo {
            namespace: namespace.into(),
            name: name.into(),
            uid: format!("uid-pod-{namespace}-{name}").into(),
            labels: LabelMap::new(),
            owners: Vec::new().into(),
            phase: "Running".into(),
            ready: true,
            terminating: false,
            created: None,
            proxy: ProxyFacts::default().into(),
            ambient: Default::default(),
        })
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.0.labels.insert(key.into(), value.into());
        self
    }
    pub fn labels(mut self, pairs: &LabelMap) -> Self {
        self.0
            .labels
            .extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }
    pub fn proxy(mut self, revision: &str, image: &str) -> Self {
        *self.0.proxy = ProxyFacts {
            sidecar: Some(SidecarContainer {
                image: image.into(),
                placement: SidecarPlacement::Container,
            }),
            has_status_annotation: true,
            status_revision: Some(revision.into()),
            ..ProxyFacts::default()
        };
        self
    }
    /// `spec.hostNetwork: true`.
    pub fn host_network(mut self) -> Self {
        self.0.proxy.host_network = true;
        self
    }
    /// The older `sidecar.istio.io/inject` annotation.
    pub fn inject_annotation(mut self, value: &str) -> Self {
        self.0.proxy.inject_annotation = Some(value.into());
        self
    }
    pub fn native_proxy(mut self, revision: &str, image: &str) -> Self {
        self = self.proxy(revision, image);
        if let Some(s) = self.0.proxy.sidecar.as_mut() {
            s.placement = SidecarPlacement::NativeSidecar;
        }
        self
    }
    pub fn proxy_without_status_revision(mut self, image: &str) -> Self {
        self = self.proxy("", image);
        self.0.proxy.status_revision = None;
        self
    }
    pub fn custom_image(mut self, image: &str) -> Self {
        self.0.proxy.custom_image = Some(image.into());
        self
    }
    pub fn spec(mut self, spec: &ProxySpec) -> Self {
        *self.0.proxy = spec.facts();
        self
    }
    pub fn owner(mut self, kind: &str, name: &str, uid: &str) -> Self {
        self.0.owners.push(OwnerRef {
            kind: kind.into(),
            api_version: "apps/v1".into(),
            name: name.into(),
            uid: uid.into(),
            controller: true,
        });
        self
    }
    pub fn not_ready(mut self) -> Self {
        self.0.ready = false;
        self
    }
    pub fn build(self) -> PodInfo {
        self.0
    }
}

/// The kinds of workload fixtures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

/// A Deployment, StatefulSet or DaemonSet with its pods.
pub struct WorkloadFixture {
    kind: Kind,
    namespace: String,
    name: String,
    replicas: i32,
    ready: Option<i32>,
    updated: Option<i32>,
    template_labels: Labels,
    template_annotations: Labels,
    template_containers: Vec<ContainerImage>,
    host_network: bool,
    object_labels: Labels,
    paused: bool,
    on_delete: bool,
    generation_behind: bool,
    pods: Vec<ProxySpec>,
    unready_pods: usize,
}

impl WorkloadFixture {
    fn new(kind: Kind, namespace: &str, name: &str) -> Self {
        WorkloadFixture {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            replicas: 2,
            ready: None,
            updated: None,
            template_labels: labels(&[("app", name)]),
            template_annotations: Labels::new(),
            template_containers: vec![ContainerImage {
                name: name.into(),
                image: format!("ghcr.io/example/{name}:1.0.0"),
                ports: Vec::new(),
            }],
            object_labels: labels(&[("app", name)]),
            paused: false,
            on_delete: false,
            generation_behind: false,
            pods: Vec::new(),
            unready_pods: 0,
            host_network: false,
        }
    }
    pub fn deployment(namespace: &str, name: &str) -> Self {
        Self::new(Kind::Deployment, namespace, name)
    }
    pub fn stateful_set(namespace: &str, name: &str) -> Self {
        Self::new(Kind::StatefulSet, namespace, name)
    }
    pub fn daemon_set(namespace: &str, name: &str) -> Self {
        Self::new(Kind::DaemonSet, namespace, name)
    }
    /// Desired replicas; pods are added with [`Self::pods`].
    pub fn replicas(mut self, n: i32) -> Self {
        self.replicas = n;
        self
    }
    /// `n` running pods with `proxy` (all Ready unless [`Self::unready_pods`]).
    pub fn pods(mut self, n: usize, proxy: ProxySpec) -> Self {
        self.pods.extend(std::iter::repeat_n(proxy, n));
        self
    }
    pub fn unready_pods(mut self, n: usize) -> Self {
        self.unready_pods = n;
        self
    }
    /// Status says only `n` pods are updated (a rollout in progress).
    pub fn updated(mut self, n: i32) -> Self {
        self.updated = Some(n);
        self
    }
    pub fn ready(mut self, n: i32) -> Self {
        self.ready = Some(n);
        self
    }
    pub fn template_label(mut self, key: &str, value: &str) -> Self {
        self.template_labels.insert(key.into(), value.into());
        self
    }
    pub fn object_label(mut self, key: &str, value: &str) -> Self {
        self.object_labels.insert(key.into(), value.into());
        self
    }
    pub fn template_annotation(mut self, key: &str, value: &str) -> Self {
        self.template_annotations.insert(key.into(), value.into());
        self
    }
    /// A gateway: labels `istio=ingressgateway`, `version=<rev>`,
    /// `istio.io/rev=<rev>`, the `gateway` injection template, `image: auto`
    /// with the usual ports.
    pub fn gateway(mut self, revision: &str) -> Self {
        for l in [&mut self.template_labels, &mut self.object_labels] {
            l.insert("app".into(), "istio-ingressgateway".into());
            l.insert("istio".into(), "ingressgateway".into());
            l.insert("version".into(), revision.into());
            l.insert("istio.io/rev".into(), revision.into());
        }
        self.template_labels
            .insert("sidecar.istio.io/inject".into(), "true".into());
        self.template_annotations
            .insert("inject.istio.io/templates".into(), "gateway".into());
        self.template_containers = vec![ContainerImage {
            name: "istio-proxy".into(),
            image: "auto".into(),
            ports: [("http2", 8080), ("https", 8443), ("status-port", 15021)]
                .into_iter()
                .map(|(n, p)| ContainerPortInfo {
                    name: Some(n.into()),
                    container_port: p,
                })
                .collect(),
        }];
        self
    }
    /// The template says `hostNetwork: true`.
    pub fn host_network(mut self) -> Self {
        self.host_network = true;
        self
    }

    pub fn paused(mut self) -> Self {
        self.paused = true;
        self
    }
    pub fn on_delete(mut self) -> Self {
        self.on_delete = true;
        self
    }
    /// `metadata.generation` ahead of `status.observedGeneration`.
    pub fn generation_behind(mut self) -> Self {
        self.generation_behind = true;
        self
    }

    fn uid(&self) -> String {
        format!("uid-{:?}-{}-{}", self.kind, self.namespace, self.name)
    }

    fn template(&self) -> PodTemplateInfo {
        PodTemplateInfo {
            labels: self.template_labels.clone().into(),
            annotations: self.template_annotations.clone(),
            containers: self.template_containers.clone(),
            sidecar: None,
            host_network: self.host_network,
        }
    }

    fn add_to(self, snapshot: &mut ClusterSnapshot) {
        let uid = self.uid();
        let pod_count = self.pods.len() as i32;
        // Status counts follow the desired replicas unless a test says
        // otherwise, so pods added by hand do not look like a rollout.
        let ready = self
            .ready
            .unwrap_or(self.replicas - self.unready_pods as i32);
        let updated = self.updated.unwrap_or(self.replicas);
        let generation = 2;
        let observed = if self.generation_behind { 1 } else { 2 };
        let template = self.template();
        let (pod_owner_kind, pod_owner_name, pod_owner_uid) = match self.kind {
            Kind::Deployment => {
                let rs_name = format!("{}-5d8f7c9b4", self.name);
                let rs_uid = format!("uid-rs-{}-{}", self.namespace, rs_name);
                snapshot.replica_sets.push(ReplicaSetInfo {
                    namespace: self.namespace.as_str().into(),
                    name: rs_name.clone(),
                    uid: rs_uid.clone(),
                    owners: vec![OwnerRef {
                        kind: "Deployment".into(),
                        api_version: "apps/v1".into(),
                        name: self.name.clone(),
                        uid: uid.clone(),
                        controller: true,
                    }],
                    desired: self.replicas,
                    replicas: pod_count,
                    ready,
                    available: ready,
                    deployment_revision: Some("1".into()),
                    template: None,
                });
                snapshot.deployments.push(DeploymentInfo {
                    namespace: self.namespace.as_str().into(),
                    name: self.name.as_str().into(),
                    uid: uid.as_str().into(),
                    labels: self.object_labels.clone().into(),
                    generation,
                    observed_generation: observed,
                    desired: self.replicas,
                    replicas: pod_count,
                    updated,
                    ready,
                    available: ready,
                    unavailable: (self.replicas - ready).max(0),
                    paused: self.paused,
                    strategy: "RollingUpdate".into(),
                    max_unavailable: Some("25%".into()),
                    max_surge: Some("25%".into()),
                    progress_deadline_exceeded: false,
                    template: template.clone().into(),
                });
                ("ReplicaSet", rs_name, rs_uid)
            }
            Kind::StatefulSet => {
                snapshot.stateful_sets.push(StatefulSetInfo {
                    namespace: self.namespace.clone(),
                    name: self.name.clone(),
                    uid: uid.clone(),
                    labels: self.object_labels.clone().into(),
                    generation,
                    observed_generation: observed,
                    desired: self.replicas,
                    replicas: pod_count,
                    ready,
                    available: ready,
                    current: updated,
                    updated,
                    current_revision: Some(format!("{}-6b7c8d9f", self.name)),
                    update_revision: Some(format!("{}-6b7c8d9f", self.name)),
                    update_strategy: if self.on_delete {
                        "OnDelete"
                    } else {
                        "RollingUpdate"
                    }
                    .into(),
                    partition: 0,
                    template: template.clone().into(),
                });
                ("StatefulSet", self.name.clone(), uid.clone())
            }
            Kind::DaemonSet => {
                snapshot.daemon_sets.push(DaemonSetInfo {
                    namespace: self.namespace.clone(),
                    name: self.name.clone(),
                    uid: uid.clone(),
                    labels: self.object_labels.clone().into(),
                    generation,
                    observed_generation: observed,
                    desired: self.replicas,
                    current: pod_count,
                    updated,
                    ready,
                    available: ready,
                    unavailable: (self.replicas - ready).max(0),
                    update_strategy: if self.on_delete {
                        "OnDelete"
                    } else {
                        "RollingUpdate"
                    }
                    .into(),
                    template: template.into(),
                    data_plane: None,
                });
                ("DaemonSet", self.name.clone(), uid.clone())
            }
        };
        for (i, spec) in self.pods.iter().enumerate() {
            let pod_name = match self.kind {
                Kind::StatefulSet => format!("{}-{i}", self.name),
                _ => format!("{pod_owner_name}-p{i}"),
            };
            let mut pod = PodFixture::new(&self.namespace, &pod_name)
                .labels(&LabelMap::from(&self.template_labels))
                .spec(spec)
                .owner(pod_owner_kind, &pod_owner_name, &pod_owner_uid);
            if let ProxySpec::Istio { revision, .. } = spec {
                pod = pod.label("istio.io/rev", revision);
            }
            if i < self.unready_pods {
                pod = pod.not_ready();
            }
            snapshot.pods.push(pod.build());
        }
    }
}

/// A snapshot under construction.
pub struct ClusterFixture(ClusterSnapshot);

impl Default for ClusterFixture {
    fn default() -> Self {
        Self::new()
    }
}

impl ClusterFixture {
    /// An empty cluster (`-A`), control plane in `istio-system`.
    pub fn new() -> Self {
        let mut snapshot = ClusterSnapshot::new("istio-system", Scope::All);
        snapshot.namespaces.push(namespace("istio-system", &[]));
        ClusterFixture(snapshot)
    }

    /// Narrows the selection to `namespaces`.
    pub fn scope(mut self, namespaces: &[&str]) -> Self {
        self.0.scope = Scope::Namespaces(namespaces.iter().map(|n| n.to_string()).collect());
        self
    }

    fn add_istiod(
        &mut self,
        deployment: &str,
        revision: Option<&str>,
        version: &str,
        service: &str,
    ) {
        let mut object_labels = labels(&[("app", "istiod"), ("istio", "pilot")]);
        if let Some(rev) = revision {
            object_labels.insert("istio.io/rev".into(), rev.into());
        }
        self.0.istiods.push(IstiodInfo {
            namespace: "istio-system".into(),
            name: deployment.into(),
            labels: object_labels.clone(),
            template_labels: object_labels,
            revision: revision.unwrap_or("default").into(),
            image: format!("docker.io/istio/pilot:{version}"),
            env: Labels::new(),
            generation: 1,
            observed_generation: 1,
            desired: 1,
            ready: 1,
            available: 1,
            updated: 1,
            helm_release: None,
        });
        let mut selector = labels(&[("app", "istiod")]);
        match revision {
            Some(rev) => selector.insert("istio.io/rev".into(), rev.into()),
            None => selector.insert("istio".into(), "pilot".into()),
        };
        self.0.services.push(ServiceInfo {
            namespace: "istio-system".into(),
            name: service.into(),
            uid: format!("uid-svc-{service}"),
            labels: labels(&[("app", "istiod")]),
            type_: "ClusterIP".into(),
            selector,
            ports: vec![ServicePortInfo {
                name: Some("https-webhook".into()),
                port: 443,
                target_port: "15017".into(),
                protocol: "TCP".into(),
                node_port: None,
            }],
            owners: Vec::new(),
            ..ServiceInfo::default()
        });
        let rev = revision.unwrap_or("default");
        let cm = if revision.is_some() {
            format!("istio-sidecar-injector-{rev}")
        } else {
            "istio-sidecar-injector".into()
        };
        self.0.injector_configs.push(InjectorConfigInfo {
            namespace: "istio-system".into(),
            name: cm,
            revision: rev.into(),
            hub: Some("docker.io/istio".into()),
            tag: Some(version.into()),
            proxy_image: Some("proxyv2".into()),
            variant: None,
            enable_namespaces_by_default: false,
            policy: InjectionPolicyConfig::parse(
                "policy: enabled\nalwaysInjectSelector: []\nneverInjectSelector: []\n",
            ),
        });
    }

    /// A revision installed with `revision: <rev>` (no default webhooks).
    pub fn revision(mut self, revision: &str, version: &str) -> Self {
        let service = format!("istiod-{revision}");
        self.add_istiod(&service, Some(revision), version, &service);
        self.0
            .webhook_configurations
            .push(WebhookConfigurationInfo {
                name: format!("istio-sidecar-injector-{revision}"),
                labels: labels(&[("app", "sidecar-injector"), ("istio.io/rev", revision)]),
                webhooks: istio_webhooks(revision, &service, false),
                ..WebhookConfigurationInfo::default()
            });
        self
    }

    /// The default revision's install: `revision` `default` gives istiod
    /// `istiod` (no `istio.io/rev` label) behind Service `istiod`; its
    /// configuration carries the four webhooks.
    pub fn default_revision_install(mut self, revision: &str, version: &str) -> Self {
        let (deployment, label, config) = if revision == "default" {
            (
                "istiod".to_string(),
                None,
                "istio-sidecar-injector".to_string(),
            )
        } else {
            (
                format!("istiod-{revision}"),
                Some(revision),
                format!("istio-sidecar-injector-{revision}"),
            )
        };
        self.add_istiod(&deployment, label, version, &deployment);
        self.0
            .webhook_configurations
            .push(WebhookConfigurationInfo {
                name: config,
                labels: labels(&[("app", "sidecar-injector"), ("istio.io/rev", revision)]),
                webhooks: istio_webhooks(revision, &deployment, true),
                ..WebhookConfigurationInfo::default()
            });
        self
    }

    /// `istioctl tag set <tag> --revision <revision>`. Setting `default`
    /// deactivates the default webhooks of the revision's own configurations,
    /// as istioctl does.
    pub fn tag(mut self, tag: &str, revision: &str) -> Self {
        let service = if revision == "default" {
            "istiod".to_string()
        } else {
            format!("istiod-{revision}")
        };
        if tag == "default" {
            // istioctl rewrites every webhook of the configuration labelled
            // istio.io/rev=default (and no tag) to never match
            // (DeactivateIstioInjectionWebhook, istioctl/pkg/tag/util.go).
            let never = || {
                matcher(vec![Expression::In(
                    "istio.io/deactivated".into(),
                    set(&["never-match"]),
                )])
            };
            for config in &mut self.0.webhook_configurations {
                let default_revision = config.labels.get("istio.io/rev").map(String::as_str)
                    == Some("default")
                    && !config.labels.contains_key("istio.io/tag");
                if !default_revision {
                    continue;
                }
                let raw =
                    serde_json::json!({"matchLabels": {"istio.io/deactivated": "never-match"}});
                for hook in &mut config.webhooks {
                    hook.namespace_selector = never();
                    hook.object_selector = never();
                    hook.raw_namespace_selector = Some(raw.clone());
                    hook.raw_object_selector = Some(raw.clone());
                }
            }
        }
        self.0
            .webhook_configurations
            .push(WebhookConfigurationInfo {
                name: format!("istio-revision-tag-{tag}"),
                labels: labels(&[
                    ("app", "sidecar-injector"),
                    ("istio.io/rev", revision),
                    ("istio.io/tag", tag),
                ]),
                webhooks: istio_webhooks(tag, &service, tag == "default"),
                ..WebhookConfigurationInfo::default()
            });
        self
    }

    /// The Service the istio-discovery chart (1.28+) renders for a revision
    /// tag: `istiod-revision-tag-<tag>` labelled `istio.io/tag` and
    /// `istio.io/rev`, selecting the revision's istiod.
    pub fn tag_service(mut self, tag: &str, revision: &str) -> Self {
        let mut selector = labels(&[("app", "istiod")]);
        if revision == "default" {
            selector.insert("istio".into(), "pilot".into());
        } else {
            selector.insert("istio.io/rev".into(), revision.into());
        }
        self.0.services.push(ServiceInfo {
            namespace: "istio-system".into(),
            name: format!("istiod-revision-tag-{tag}"),
            uid: format!("uid-svc-tag-{tag}"),
            labels: labels(&[
                ("app", "istiod"),
                ("istio", "pilot"),
                ("istio.io/rev", revision),
                ("istio.io/tag", tag),
            ]),
            type_: "ClusterIP".into(),
            selector,
            ports: vec![ServicePortInfo {
                name: Some("https-webhook".into()),
                port: 443,
                target_port: "15017".into(),
                protocol: "TCP".into(),
                node_port: None,
            }],
            owners: Vec::new(),
            ..ServiceInfo::default()
        });
        self
    }

    /// A tag whose Service does not exist (its revision was removed).
    pub fn tag_to_missing_service(mut self, tag: &str, revision: &str) -> Self {
        self.0
            .webhook_configurations
            .push(WebhookConfigurationInfo {
                name: format!("istio-revision-tag-{tag}"),
                labels: labels(&[("istio.io/rev", revision), ("istio.io/tag", tag)]),
                webhooks: istio_webhooks(tag, &format!("istiod-{revision}"), false),
                ..WebhookConfigurationInfo::default()
            });
        self
    }

    /// istiod of `revision` has no Ready pod.
    pub fn unready(mut self, revision: &str) -> Self {
        for i in self.0.istiods.iter_mut().filter(|i| i.revision == revision) {
            i.ready = 0;
            i.available = 0;
        }
        self
    }

    /// Every webhook fails open.
    pub fn failure_policy_ignore(mut self) -> Self {
        for config in &mut self.0.webhook_configurations {
            for hook in &mut config.webhooks {
                hook.failure_policy = "Ignore".into();
            }
        }
        self
    }

    /// The injector ConfigMap of `revision` names another proxy tag.
    pub fn injector_tag(mut self, revision: &str, tag: &str) -> Self {
        for c in self
            .0
            .injector_configs
            .iter_mut()
            .filter(|c| c.revision == revision)
        {
            c.tag = Some(tag.into());
        }
        self
    }

    /// A hand-written injector configuration for `revision` with match-label selectors.
    pub fn custom_webhook(
        mut self,
        name: &str,
        revision: &str,
        namespace_labels: &[(&str, &str)],
        object_labels: &[(&str, &str)],
    ) -> Self {
        let ns = LabelMatcher::from_map(&labels(namespace_labels));
        let obj = if object_labels.is_empty() {
            LabelMatcher::everything()
        } else {
            LabelMatcher::from_map(&labels(object_labels))
        };
        self.0
            .webhook_configurations
            .push(WebhookConfigurationInfo {
                name: name.into(),
                labels: labels(&[("istio.io/rev", revision)]),
                webhooks: vec![webhook(
                    "custom.sidecar-injector.istio.io",
                    &format!("istiod-{revision}"),
                    ns,
                    obj,
                )],
                ..WebhookConfigurationInfo::default()
            });
        self
    }

    /// `sidecarInjectorWebhook.enableNamespacesByDefault: true` on the
    /// default install: the chart's `auto.` webhook (namespaces without
    /// injection labels, system namespaces excepted; pods neither opting in
    /// or out nor naming a revision), added to the default configuration.
    pub fn enable_namespaces_by_default(mut self, revision: &str) -> Self {
        let service = if revision == "default" {
            "istiod".to_string()
        } else {
            format!("istiod-{revision}")
        };
        let auto = webhook(
            "auto.sidecar-injector.istio.io",
            &service,
            matcher(vec![
                Expression::DoesNotExist("istio-injection".into()),
                Expression::DoesNotExist("istio.io/rev".into()),
                Expression::NotIn(
                    "kubernetes.io/metadata.name".into(),
                    set(&[
                        "kube-system",
                        "kube-public",
                        "kube-node-lease",
                        "local-path-storage",
                    ]),
                ),
            ]),
            matcher(vec![
                Expression::DoesNotExist("sidecar.istio.io/inject".into()),
                Expression::DoesNotExist("istio.io/rev".into()),
            ]),
        );
        let config = self
            .0
            .webhook_configurations
            .iter_mut()
            .find(|c| {
                c.labels.get("istio.io/rev").map(String::as_str) == Some(revision)
                    && !c.labels.contains_key("istio.io/tag")
            })
            .expect("enable_namespaces_by_default after the revision's install");
        config.webhooks.push(auto);
        for c in self
            .0
            .injector_configs
            .iter_mut()
            .filter(|c| c.revision == revision)
        {
            c.enable_namespaces_by_default = true;
        }
        self
    }

    /// Another product's pod webhook, sorted before Istio's.
    pub fn foreign_webhook(mut self, name: &str) -> Self {
        let mut hook = webhook(
            "policy.example.com",
            "agent",
            LabelMatcher::everything(),
            LabelMatcher::everything(),
        );
        if let Some(s) = hook.service.as_mut() {
            s.namespace = "policy".into();
        }
        self.0
            .webhook_configurations
            .push(WebhookConfigurationInfo {
                name: name.into(),
                labels: Labels::new(),
                webhooks: vec![hook],
                ..WebhookConfigurationInfo::default()
            });
        self
    }

    pub fn namespace(mut self, name: &str, pairs: &[(&str, &str)]) -> Self {
        self.0.namespaces.push(namespace(name, pairs));
        self
    }

    pub fn workload(mut self, workload: WorkloadFixture) -> Self {
        workload.add_to(&mut self.0);
        self
    }

    pub fn pod(mut self, pod: PodFixture) -> Self {
        self.0.pods.push(pod.build());
        self
    }

    pub fn replica_set(mut self, rs: ReplicaSetInfo) -> Self {
        self.0.replica_sets.push(rs);
        self
    }

    /// A PDB selecting `app=<app>` with `disruptions_allowed`.
    pub fn pdb(mut self, namespace: &str, app: &str, disruptions_allowed: i32) -> Self {
        self.0.pod_disruption_budgets.push(PdbInfo {
            namespace: namespace.into(),
            name: app.into(),
            selector: LabelMatcher::from_map(&labels(&[("app", app)])),
            min_available: Some("1".into()),
            max_unavailable: None,
            disruptions_allowed,
            current_healthy: 2,
            desired_healthy: 1,
            expected_pods: 2,
        });
        self
    }

    /// A Service of `type_` with `selector` and ports (port, targetPort).
    pub fn service(
        mut self,
        namespace: &str,
        name: &str,
        type_: &str,
        selector: &[(&str, &str)],
        ports: &[(i32, &str)],
    ) -> Self {
        self.0.services.push(ServiceInfo {
            namespace: namespace.into(),
            name: name.into(),
            uid: format!("uid-svc-{namespace}-{name}"),
            labels: Labels::new(),
            type_: type_.into(),
            selector: labels(selector),
            ports: ports
                .iter()
                .map(|(port, target)| ServicePortInfo {
                    name: None,
                    port: *port,
                    target_port: target.to_string(),
                    protocol: "TCP".into(),
                    node_port: None,
                })
                .collect(),
            owners: Vec::new(),
            ..ServiceInfo::default()
        });
        self
    }

    /// An EndpointSlice of `service` listing `pods` (name, ready).
    pub fn endpoints(mut self, namespace: &str, service: &str, pods: &[(&str, bool)]) -> Self {
        self.0.endpoint_slices.push(EndpointSliceInfo {
            namespace: namespace.into(),
            name: format!("{service}-abcde"),
            service_name: Some(service.into()),
            endpoints: pods
                .iter()
                .map(|(pod, ready)| EndpointRef {
                    pod: Some(pod.to_string()),
                    ready: *ready,
                })
                .collect(),
        });
        self
    }

    /// Direct access for one-off edits.
    pub fn edit(mut self, f: impl FnOnce(&mut ClusterSnapshot)) -> Self {
        f(&mut self.0);
        self
    }

    pub fn build(self) -> ClusterSnapshot {
        self.0
    }
}

pub fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0)
        .single()
        .expect("a valid time")
}

/// The sim's `canary` scenario, written with the fixture builders.
pub fn canary_fixture() -> ClusterFixture {
    ClusterFixture::new()
        .revision("1-21-2", "1.21.2")
        .revision("1-22-3", "1.22.3")
        .tag("default", "1-21-2")
        .tag("prod-stable", "1-21-2")
        .tag("prod-canary", "1-22-3")
        .namespace("shop", &[("istio-injection", "enabled")])
        .namespace("pay", &[("istio.io/rev", "1-22-3")])
        .namespace("cart", &[("istio.io/rev", "prod-stable")])
        .namespace(
            "legacy",
            &[("istio-injection", "enabled"), ("istio.io/rev", "1-22-3")],
        )
        .namespace("typo", &[("istio.io/rev", "1-22-4")])
        .namespace("istio-gateways", &[])
        .workload(
            WorkloadFixture::deployment("shop", "frontend")
                .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        )
        .pdb("shop", "frontend", 1)
        .workload(
            WorkloadFixture::deployment("shop", "recommendations")
                .replicas(1)
                .pods(1, ProxySpec::istio("1-21-2", "1.21.2")),
        )
        .workload(
            WorkloadFixture::deployment("pay", "payments")
                .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        )
        .pdb("pay", "payments", 1)
        .workload(
            WorkloadFixture::stateful_set("pay", "ledger")
                .on_delete()
                .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        )
        .pdb("pay", "ledger", 1)
        .workload(
            WorkloadFixture::deployment("cart", "cart")
                .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        )
        .pdb("cart", "cart", 1)
        .workload(
            WorkloadFixture::deployment("legacy", "inventory")
                .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        )
        .pdb("legacy", "inventory", 1)
        .workload(WorkloadFixture::deployment("typo", "orders").pods(2, ProxySpec::none()))
        .pod(PodFixture::new("pay", "debug-shell").spec(&ProxySpec::istio("1-21-2", "1.21.2")))
        .workload(
            WorkloadFixture::deployment("istio-gateways", "istio-ingressgateway-1-21-2")
                .gateway("1-21-2")
                .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        )
        .workload(
            WorkloadFixture::deployment("istio-gateways", "istio-ingressgateway-1-22-3")
                .gateway("1-22-3")
                .pods(2, ProxySpec::istio("1-22-3", "1.22.3")),
        )
        .pdb("istio-gateways", "istio-ingressgateway", 1)
        .service(
            "istio-gateways",
            "istio-ingressgateway",
            "LoadBalancer",
            &[("istio", "ingressgateway"), ("version", "1-21-2")],
            &[(80, "8080"), (443, "8443"), (15021, "15021")],
        )
        .endpoints(
            "istio-gateways",
            "istio-ingressgateway",
            &[
                ("istio-ingressgateway-1-21-2-5d8f7c9b4-p0", true),
                ("istio-ingressgateway-1-21-2-5d8f7c9b4-p1", true),
            ],
        )
}

/// Converts what a mesh-sim world holds into a snapshot the way `collect.rs`
/// does, as if every LIST of [`ReadSet::Everything`](crate::collect::ReadSet)
/// had answered with the world's objects: each stored object is deserialised
/// into its k8s-openapi type and reduced with the conversions collect applies
/// to LIST pages, namespaced kinds are kept for the read namespaces, and the
/// lists go through [`collect::assemble`], the one assembly.
pub fn snapshot_from_world(world: &mesh_sim::world::World, scope: Scope) -> ClusterSnapshot {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use mesh_sim::resources::kinds;
    use serde::de::DeserializeOwned;

    use crate::collect::{self, CollectOptions, RawLists};
    use crate::snapshot::gateway_api::{
        Gateway, GatewayApiSnapshot, GatewayClass, GatewayClassInfo, GatewayInfo,
    };

    let options = CollectOptions {
        scope,
        control_plane_namespace: "istio-system".to_string(),
        selector: None,
    };
    // What a LIST of the kind answers: every cluster-scoped object, the
    // namespaced ones of the read namespaces; each converted with `map`.
    let list = |resource: &mesh_sim::resources::Resource| {
        world
            .store
            .list(resource, None)
            .map(|obj| (*obj).clone())
            .filter(|obj| {
                obj["metadata"]["namespace"]
                    .as_str()
                    .is_none_or(|namespace| options.reads_namespace(namespace))
            })
            .collect::<Vec<serde_json::Value>>()
    };
    fn converted<K: DeserializeOwned, T>(
        objects: Vec<serde_json::Value>,
        map: impl Fn(&K) -> Option<T>,
    ) -> Vec<T> {
        objects
            .into_iter()
            .map(|obj| serde_json::from_value::<K>(obj).expect("a valid object"))
            .filter_map(|object| map(&object))
            .collect()
    }
    let cp = options.control_plane_namespace.as_str();
    let raw = RawLists {
        namespaces: converted(list(kinds::namespaces()), |n: &Namespace| {
            Some(NamespaceInfo::from(n))
        }),
        webhook_configurations: converted(
            list(kinds::mutating_webhooks()),
            |w: &MutatingWebhookConfiguration| Some(WebhookConfigurationInfo::from(w)),
        ),
        deployments: converted(list(kinds::deployments()), |d: &Deployment| {
            Some(collect::deployment_facts(d, cp))
        }),
        istiods: None,
        stateful_sets: converted(list(kinds::statefulsets()), |s: &StatefulSet| {
            Some(StatefulSetInfo::from(s))
        }),
        daemon_sets: converted(list(kinds::daemonsets()), |d: &DaemonSet| {
            Some(DaemonSetInfo::from(d))
        }),
        replica_sets: converted(list(kinds::replicasets()), |r: &ReplicaSet| {
            Some(ReplicaSetInfo::from(r))
        }),
        pods: converted(list(kinds::pods()), |p: &Pod| Some(PodInfo::from(p))),
        services: converted(list(kinds::services()), |s: &Service| {
            Some(ServiceInfo::from(s))
        }),
        pod_disruption_budgets: converted(list(kinds::pdbs()), |p: &PodDisruptionBudget| {
            Some(PdbInfo::from(p))
        }),
        endpoint_slices: converted(list(kinds::endpointslices()), |e: &EndpointSlice| {
            Some(EndpointSliceInfo::from(e))
        }),
        // collect lists ConfigMaps in the control-plane namespace only.
        injector_configs: converted(list(kinds::configmaps()), |c: &ConfigMap| {
            (c.metadata.namespace.as_deref() == Some(cp))
                .then(|| collect::injector_config(c))
                .flatten()
        }),
        rollouts: if world.config.serves(kinds::rollouts()) {
            converted(list(kinds::rollouts()), |r: &crate::snapshot::Rollout| {
                Some(crate::snapshot::RolloutInfo::from(r))
            })
        } else {
            Vec::new()
        },
        rollouts_served: Some(world.config.serves(kinds::rollouts())),
        jobs: converted(
            list(kinds::jobs()),
            |j: &k8s_openapi::api::batch::v1::Job| Some(crate::snapshot::JobInfo::from(j)),
        ),
        cron_jobs: converted(
            list(kinds::cronjobs()),
            |c: &k8s_openapi::api::batch::v1::CronJob| Some(crate::snapshot::CronJobInfo::from(c)),
        ),
        gateway_api: GatewayApiSnapshot {
            installed: world.config.gateway_api,
            gateways: converted(list(kinds::gateways()), |g: &Gateway| {
                Some(GatewayInfo::from(g))
            }),
            classes: converted(list(kinds::gateway_classes()), |c: &GatewayClass| {
                Some(GatewayClassInfo::from(c))
            }),
        },
        nodes: converted(list(kinds::nodes()), |n: &Node| {
            Some(crate::snapshot::NodeInfo::from(n))
        }),
    };
    collect::assemble(raw, &options)
}

/// The `canary` scenario as mesh-sim builds it (controllers settled).
pub fn canary_world() -> mesh_sim::world::World {
    let mut world = mesh_sim::world::World::new(mesh_sim::world::SimConfig::default());
    mesh_sim::scenario::load_builtin(&mut world, "canary").expect("the canary scenario loads");
    world
}

/// The `canary` scenario as mesh-sim builds it (controllers settled), as a snapshot.
pub fn sim_canary_snapshot(scope: Scope) -> ClusterSnapshot {
    snapshot_from_world(&canary_world(), scope)
}

/// Change one object of `world` as a client would (an update).
pub fn edit_object(
    world: &mut mesh_sim::world::World,
    resource: &'static mesh_sim::resources::Resource,
    namespace: &str,
    name: &str,
    change: impl FnOnce(&mut serde_json::Value),
) {
    let mut object = (*world.store.get(resource, namespace, name).expect("exists")).clone();
    change(&mut object);
    world
        .update(resource, object, &mesh_sim::world::WriteOptions::default())
        .expect("the edit is stored");
}

/// Change one object's status as its controller would.
pub fn edit_status(
    world: &mut mesh_sim::world::World,
    resource: &'static mesh_sim::resources::Resource,
    namespace: &str,
    name: &str,
    change: impl FnOnce(&mut serde_json::Value),
) {
    let mut object = (*world.store.get(resource, namespace, name).expect("exists")).clone();
    change(&mut object);
    world
        .update_status(resource, object, &mesh_sim::world::WriteOptions::default())
        .expect("the status is stored");
}
