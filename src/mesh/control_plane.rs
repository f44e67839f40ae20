//! The control plane as the API server sees it: istiod revisions, revision
//! tags, and the injector webhooks in the order the API server calls them,
//! each resolved to the revision that would answer it.
//!
//! A webhook is resolved the way a call to it travels: `clientConfig.service`
//! names a Service; that Service's selector picks istiod pods, i.e. the
//! istiod Deployment whose template labels it matches. The revision found
//! that way is the one that injects, whatever the webhook's labels claim —
//! which is what makes revision tags and a moved `default` tag come out
//! right without special cases.

use std::collections::BTreeMap;

use crate::mesh::proxy::{ProxyImageValues, image_version};
use crate::snapshot::{
    ClusterSnapshot, InjectionPolicyConfig, IstiodInfo, ServiceInfo, SharedStr, WebhookInfo,
};

/// MutatingWebhookConfiguration label naming a revision tag.
pub const TAG_LABEL: &str = "istio.io/tag";
/// Label naming a revision.
pub const REV_LABEL: &str = "istio.io/rev";
/// Suffix of the names Istio gives its injector webhooks.
const INJECTOR_WEBHOOK_SUFFIX: &str = "sidecar-injector.istio.io";

/// One control-plane revision: an istiod Deployment.
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    /// The istiod Deployment's name (`istiod`, `istiod-1-22-3`).
    pub deployment: String,
    pub namespace: String,
    /// The `istio.io/rev` label, `default` when absent.
    pub revision: String,
    /// The proxy version this revision injects: the tag of [`Self::proxy_image`]
    /// when that is known (variant stripped), else istiod's image tag.
    pub proxy_version: Option<String>,
    /// The `istio-proxy` image a plain new pod gets, rendered from the
    /// injector ConfigMap's `values` ([`ProxyImageValues::render`]); `None`
    /// when the ConfigMap could not be read.
    pub proxy_image: Option<String>,
    /// Those `values`, to render the image for pods with their own
    /// `sidecar.istio.io/proxyImage[Type]` annotations.
    pub image_values: Option<ProxyImageValues>,
    /// istiod's own version (its image tag): what proxies talk to.
    pub istiod_version: Option<String>,
    /// The image of istiod's `discovery` container.
    pub image: String,
    pub desired: i32,
    pub ready: i32,
    /// istiod runs with `ENABLE_NATIVE_SIDECARS=true`.
    pub native_sidecars: bool,
    /// Its injector ConfigMap's `config` (policy and selectors); `None` when
    /// it could not be read, which the model takes as the charts' default.
    pub injection_policy: Option<InjectionPolicyConfig>,
}

impl Revision {
    /// Whether at least one istiod pod is Ready: its webhook can answer.
    pub fn is_ready(&self) -> bool {
        self.ready > 0
    }

    fn from_istiod(istiod: &IstiodInfo, snapshot: &ClusterSnapshot) -> Self {
        let injector = snapshot
            .injector_configs
            .iter()
            .find(|c| c.namespace == istiod.namespace && c.revision == istiod.revision);
        let istiod_version = image_version(&istiod.image);
        let image_values = injector.map(ProxyImageValues::of);
        let proxy_image = image_values
            .as_ref()
            .and_then(|v| v.render(&Default::default()));
        let proxy_version = match &proxy_image {
            Some(image) => image_version(image),
            None => istiod_version.clone(),
        };
        Revision {
            deployment: istiod.name.clone(),
            namespace: istiod.namespace.clone(),
            revision: istiod.revision.clone(),
            proxy_version,
            proxy_image,
            image_values,
            istiod_version,
            image: istiod.image.clone(),
            desired: istiod.desired,
            ready: istiod.ready,
            native_sidecars: istiod
                .env
                .get("ENABLE_NATIVE_SIDECARS")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            injection_policy: injector.and_then(|c| c.policy.clone()),
        }
    }
}

/// Where a webhook's calls go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookTarget {
    /// An istiod revision (index into [`ControlPlane::revisions`]).
    Revision(usize),
    /// `clientConfig.url`: a control plane outside the cluster (remote
    /// istiod); the revision is only known from the configuration's label.
    External {
        url: String,
        revision: Option<String>,
    },
    /// A Service that does not exist or selects no istiod: every call fails.
    Unresolved {
        service: String,
        revision: Option<String>,
    },
}

/// One Istio injector webhook, in API-server call order.
#[derive(Clone, Debug, PartialEq)]
pub struct InjectorWebhook {
    /// The MutatingWebhookConfiguration's name.
    pub configuration: String,
    /// The `istio.io/tag` label of the configuration (a revision tag).
    pub tag: Option<String>,
    pub webhook: WebhookInfo,
    pub target: WebhookTarget,
    /// `configuration/webhook`, how reports name it: made once, shared by
    /// every outcome it answers.
    pub qualified_name: SharedStr,
}

/// A revision tag, found as `istioctl tag list` finds it: a
/// MutatingWebhookConfiguration labelled `istio.io/tag` (`istioctl tag set`,
/// or the chart's `revisionTags`), and/or, from Istio 1.28, a Service
/// `istiod-revision-tag-<tag>` in the control-plane namespace labelled
/// `istio.io/tag` and `istio.io/rev` (`revision-tags-svc.yaml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    /// The webhook configuration serving it, if any: only then do pods of
    /// namespaces labelled `istio.io/rev=<tag>` get a proxy.
    pub configuration: Option<String>,
    /// The Service naming it, if any.
    pub service: Option<String>,
    /// The revision behind it: where its webhooks resolve to, else the
    /// Service's `istio.io/rev` label; `None` when its webhooks' Service
    /// selects no istiod.
    pub revision: Option<String>,
}

impl Tag {
    /// Whether an injector webhook serves the tag.
    pub fn has_webhook(&self) -> bool {
        self.configuration.is_some()
    }
}

/// Revisions, tags and injector webhooks.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ControlPlane {
    pub namespace: String,
    /// istiod Deployments, sorted by revision name.
    pub revisions: Vec<Revision>,
    /// Injector webhooks in the order the API server calls them:
    /// configurations sorted by name, webhooks in their listed order.
    pub webhooks: Vec<InjectorWebhook>,
    /// Revision tags, sorted by name.
    pub tags: Vec<Tag>,
}

impl ControlPlane {
    /// Resolves the snapshot's istiods, Services and webhook configurations.
    pub fn from_snapshot(snapshot: &ClusterSnapshot) -> Self {
        let mut istiods: Vec<&IstiodInfo> = snapshot
            .istiods
            .iter()
            .filter(|i| i.namespace == snapshot.control_plane_namespace)
            .collect();
        istiods.sort_by(|a, b| a.revision.cmp(&b.revision).then(a.name.cmp(&b.name)));
        let revisions: Vec<Revision> = istiods
            .iter()
            .map(|i| Revision::from_istiod(i, snapshot))
            .collect();

        let mut configurations: Vec<_> = snapshot.webhook_configurations.iter().collect();
        configurations.sort_by(|a, b| a.name.cmp(&b.name));

        let mut webhooks = Vec::new();
        let mut tags: BTreeMap<String, Tag> = BTreeMap::new();
        for config in configurations {
            let labelled_revision = config.labels.get(REV_LABEL).cloned();
            let tag = config.tag().map(str::to_string);
            let looks_like_istio = labelled_revision.is_some() || tag.is_some();
            for webhook in &config.webhooks {
                if !webhook.covers_pod_create() {
                    continue;
                }
                let target = resolve_target(
                    webhook,
                    labelled_revision.as_deref(),
                    &istiods,
                    &snapshot.services,
                );
                let is_injector = matches!(target, WebhookTarget::Revision(_))
                    || looks_like_istio
                    || webhook.name.ends_with(INJECTOR_WEBHOOK_SUFFIX);
                if !is_injector {
                    // Another product's webhook: it may mutate pods, but it
                    // does not decide which proxy they get.
                    continue;
                }
                if let Some(tag_name) = &tag {
                    let entry = tags.entry(tag_name.clone()).or_insert_with(|| Tag {
                        name: tag_name.clone(),
                        configuration: Some(config.name.clone()),
                        service: None,
                        revision: None,
                    });
                    if entry.revision.is_none() {
                        entry.revision = match &target {
                            WebhookTarget::Revision(i) => Some(revisions[*i].revision.clone()),
                            WebhookTarget::External { revision, .. } => revision.clone(),
                            WebhookTarget::Unresolved { .. } => None,
                        };
                    }
                }
                webhooks.push(InjectorWebhook {
                    configuration: config.name.clone(),
                    tag: tag.clone(),
                    webhook: webhook.clone(),
                    target,
                    qualified_name: format!("{}/{}", config.name, webhook.name).into(),
                });
            }
        }
        // Tags as Services: labelled istio.io/tag in the control plane's
        // namespace; the revision is the istio.io/rev label, and a Service
        // without one is not a tag's (istioctl/pkg/tag/tag.go,
        // uniqTagsFromServices).
        let mut tag_services: Vec<&ServiceInfo> = snapshot
            .services
            .iter()
            .filter(|s| s.namespace == snapshot.control_plane_namespace)
            .filter(|s| s.labels.get(TAG_LABEL).is_some_and(|t| !t.is_empty()))
            .collect();
        tag_services.sort_by(|a, b| a.name.cmp(&b.name));
        for service in tag_services {
            let (Some(tag_name), Some(revision)) =
                (service.labels.get(TAG_LABEL), service.labels.get(REV_LABEL))
            else {
                continue;
            };
            let entry = tags.entry(tag_name.clone()).or_insert_with(|| Tag {
                name: tag_name.clone(),
                configuration: None,
                service: None,
                revision: Some(revision.clone()),
            });
            entry.service.get_or_insert_with(|| service.name.clone());
        }
        ControlPlane {
            namespace: snapshot.control_plane_namespace.clone(),
            revisions,
            webhooks,
            tags: tags.into_values().collect(),
        }
    }

    /// The revision called `name` (a revision, not a tag).
    pub fn revision(&self, name: &str) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.revision == name)
    }

    /// The tag called `name`.
    pub fn tag(&self, name: &str) -> Option<&Tag> {
        self.tags.iter().find(|t| t.name == name)
    }

    /// Resolves a revision-or-tag name to a revision name: a revision stands
    /// for itself, a tag for the revision behind it.
    pub fn resolve(&self, revision_or_tag: &str) -> Option<&str> {
        if let Some(r) = self.revision(revision_or_tag) {
            return Some(&r.revision);
        }
        self.tag(revision_or_tag)?.revision.as_deref()
    }

    /// Whether `name` is a revision or a tag that exists.
    pub fn knows(&self, name: &str) -> bool {
        self.revision(name).is_some() || self.tag(name).is_some()
    }

    /// Tags pointing at `revision`.
    pub fn tags_of(&self, revision: &str) -> Vec<&str> {
        self.tags
            .iter()
            .filter(|t| t.revision.as_deref() == Some(revision))
            .map(|t| t.name.as_str())
            .collect()
    }

    /// The revision a pod in a namespace labelled `istio-injection=enabled`
    /// would get: what "default" means on this cluster (the `default` tag, or
    /// the default revision's own webhooks).
    pub fn default_revision(&self) -> Option<String> {
        use crate::mesh::injection::{InjectionOutcome, expected_revision};
        use crate::snapshot::{Labels, NamespaceInfo};
        let probe = NamespaceInfo {
            name: "default-revision-probe".to_string(),
            labels: Labels::from([
                (
                    "kubernetes.io/metadata.name".to_string(),
                    "default-revision-probe".to_string(),
                ),
                ("istio-injection".to_string(), "enabled".to_string()),
            ]),
            ..NamespaceInfo::default()
        };
        match expected_revision(&probe, &Labels::new(), &Labels::new(), self) {
            InjectionOutcome::Injected { revision, .. } => Some(revision),
            InjectionOutcome::WouldFail { revision, .. } => Some(revision),
            InjectionOutcome::NotInjected { .. } => None,
        }
    }
}

fn resolve_target(
    webhook: &WebhookInfo,
    labelled_revision: Option<&str>,
    istiods: &[&IstiodInfo],
    services: &[ServiceInfo],
) -> WebhookTarget {
    let Some(reference) = &webhook.service else {
        return WebhookTarget::External {
            url: webhook.url.clone().unwrap_or_default(),
            revision: labelled_revision.map(str::to_string),
        };
    };
    let unresolved = || WebhookTarget::Unresolved {
        service: format!("{}/{}", reference.namespace, reference.name),
        revision: labelled_revision.map(str::to_string),
    };
    let Some(service) = services
        .iter()
        .find(|s| s.namespace == reference.namespace && s.name == reference.name)
    else {
        return unresolved();
    };
    let behind: Vec<usize> = istiods
        .iter()
        .enumerate()
        .filter(|(_, i)| i.namespace == service.namespace && service.selects(&i.template_labels))
        .map(|(index, _)| index)
        .collect();
    // A default install's `istiod` Service selects `app=istiod,istio=pilot`,
    // which a canary's pods carry too; the configuration's own revision label
    // says which of them is meant.
    let chosen = behind
        .iter()
        .copied()
        .find(|&i| Some(istiods[i].revision.as_str()) == labelled_revision)
        .or_else(|| behind.first().copied());
    match chosen {
        Some(index) => WebhookTarget::Revision(index),
        None => unresolved(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::ClusterFixture;

    #[test]
    fn tags_are_read_from_webhooks_and_from_tag_services_as_istioctl_tag_list_does() {
        let cp = ControlPlane::from_snapshot(
            &ClusterFixture::new()
                .revision("1-26-2", "1.26.2")
                .revision("1-27-1", "1.27.1")
                // istioctl before 1.28: the webhook configuration only.
                .tag("prod-legacy", "1-26-2")
                // The 1.28 chart: both.
                .tag("prod-stable", "1-26-2")
                .tag_service("prod-stable", "1-26-2")
                // A namespace-scoped release: the Service only.
                .tag_service("prod-canary", "1-27-1")
                .build(),
        );
        let tag = |name: &str| cp.tag(name).expect(name).clone();
        assert_eq!(
            tag("prod-legacy"),
            Tag {
                name: "prod-legacy".into(),
                configuration: Some("istio-revision-tag-prod-legacy".into()),
                service: None,
                revision: Some("1-26-2".into()),
            }
        );
        assert_eq!(
            tag("prod-stable"),
            Tag {
                name: "prod-stable".into(),
                configuration: Some("istio-revision-tag-prod-stable".into()),
                service: Some("istiod-revision-tag-prod-stable".into()),
                revision: Some("1-26-2".into()),
            }
        );
        let canary = tag("prod-canary");
        assert_eq!(canary.revision.as_deref(), Some("1-27-1"));
        assert!(!canary.has_webhook());
        assert_eq!(cp.tags_of("1-26-2"), ["prod-legacy", "prod-stable"]);
        assert_eq!(cp.tags_of("1-27-1"), ["prod-canary"]);
        assert_eq!(cp.resolve("prod-canary"), Some("1-27-1"));
    }

    #[test]
    fn a_service_labelled_with_a_tag_but_no_revision_is_not_a_tag() {
        let cp = ControlPlane::from_snapshot(
            &ClusterFixture::new()
                .revision("1-27-1", "1.27.1")
                .tag_service("prod", "1-27-1")
                .edit(|s| {
                    for svc in &mut s.services {
                        svc.labels.remove("istio.io/rev");
                    }
                })
                .build(),
        );
        assert!(cp.tags.is_empty());
    }
}
