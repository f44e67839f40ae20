//! The objects a revision tag is made of, exactly as `istioctl tag set`
//! of the target revision's Istio version writes them.
//!
//! ```text
//! target revision ─► its Istio version ─► ChartLayout (what that version's chart renders)
//! its own webhook configuration (istio.io/rev=<rev>, no istio.io/tag) ─► Canonical
//!                                        │ caBundle, service name and path, reinvocationPolicy,
//!                                        │ labels (but `app`), annotations
//!                                        ▼
//! tag_webhook_configuration(tag, canonical, layout)  = revision-tags(-mwc).yaml, then istioctl's overrides
//! tag_service(tag, revision, layout)                 = revision-tags-svc.yaml (Istio 1.28 on)
//! ```
//!
//! istioctl renders the istio-discovery chart with `revisionTags: [<tag>]`
//! (release name `istio`, chart version = the Istio version) and keeps the
//! tag's objects (`istioctl/pkg/tag/generate.go`, `generateMutatingWebhook`,
//! `generateTagService`, `tagWebhookConfigFromCanonicalWebhook`). What
//! changed between versions of `templates/revision-tags.yaml` (renamed
//! `revision-tags-mwc.yaml` in 1.28), read from the release tags:
//!
//! | from | change |
//! |---|---|
//! | 1.23 | `admissionReviewVersions: ["v1"]` (before: `["v1beta1", "v1"]`) |
//! | 1.24 | labels `app.kubernetes.io/name: istiod` and the chart's `istio.labels` (managed-by, instance, part-of, version, helm.sh/chart) |
//! | 1.26 | each webhook carries `reinvocationPolicy` (the values' `Never`, or the revision's own) |
//! | 1.28 | `revision-tags-svc.yaml`: a Service `istiod-revision-tag-<tag>` per tag; istioctl writes it too |
//!
//! istioctl then sets every webhook's `caBundle` and service `path` (and,
//! from 1.26, the service name) from the revision's own injector webhook,
//! merges that configuration's labels (without `app`) and annotations into
//! the tag's, and, as `tag set` marks the tag user-managed, drops every label
//! containing `operator.istio.io`. The Service gets the chart's labels only.
//!
//! Two liberties, both named in the README: a missing service `path` on the
//! revision's webhook is written as the chart's `/inject` (istioctl would
//! write an empty path, which the API server refuses), and the plugin's own
//! record annotations (`mesh-upgrade.io/*`) are never copied from the
//! revision's configuration.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::mesh::proxy::Version;
use crate::snapshot::{Labels, RECORD_ANNOTATION_PREFIX, WebhookConfigurationInfo, WebhookInfo};

/// The name Istio's injector webhooks end with.
pub const INJECTOR_WEBHOOK_SUFFIX: &str = "sidecar-injector.istio.io";

/// The Helm release name istioctl renders its charts with.
const ISTIOCTL_RELEASE: &str = "istio";

/// What `istioctl tag set` makes a webhook that must never match (the
/// default revision's own webhooks once the `default` tag moves):
/// `istioctl/pkg/util/common.go`, `NeverMatch`.
pub fn never_match() -> Value {
    json!({"matchLabels": {"istio.io/deactivated": "never-match"}})
}

/// The MutatingWebhookConfiguration's name for a tag: the chart appends the
/// release namespace unless it is `istio-system`.
pub fn tag_webhook_name(tag: &str, istio_namespace: &str) -> String {
    if istio_namespace == "istio-system" {
        format!("istio-revision-tag-{tag}")
    } else {
        format!("istio-revision-tag-{tag}-{istio_namespace}")
    }
}

/// The tag's Service in the control-plane namespace.
pub fn tag_service_name(tag: &str) -> String {
    format!("istiod-revision-tag-{tag}")
}

/// What a version of the istio-discovery chart renders for a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartLayout {
    /// The Istio version (istiod's image tag), `None` when unknown.
    pub version: Option<String>,
    /// `major.minor` of it.
    minor: Option<(u64, u64)>,
}

impl ChartLayout {
    /// The layout of the chart of `version` (istiod's image tag). An
    /// unknown version (a digest-pinned image) is taken as the newest
    /// layout known, without the Service, which would then be a guess.
    pub fn of(version: Option<&str>) -> Self {
        ChartLayout {
            version: version.map(str::to_string),
            minor: version.and_then(Version::parse).map(|v| (v.major, v.minor)),
        }
    }

    fn at_least(&self, minor: u64) -> bool {
        match self.minor {
            Some((major, m)) => major > 1 || (major == 1 && m >= minor),
            None => true,
        }
    }

    /// `admissionReviewVersions` of each webhook.
    pub fn admission_review_versions(&self) -> Vec<&'static str> {
        if self.at_least(23) {
            vec!["v1"]
        } else {
            vec!["v1beta1", "v1"]
        }
    }

    /// Each webhook carries `reinvocationPolicy` (1.26 on).
    pub fn renders_reinvocation_policy(&self) -> bool {
        self.at_least(26)
    }

    /// The chart's common labels (1.24 on).
    pub fn renders_helm_labels(&self) -> bool {
        self.at_least(24)
    }

    /// The tag is also a Service `istiod-revision-tag-<tag>` (1.28 on; not
    /// when the version is unknown).
    pub fn renders_tag_service(&self) -> bool {
        self.minor.is_some() && self.at_least(28)
    }

    /// `Istio 1.22` (or `an unknown Istio version`).
    pub fn describe(&self) -> String {
        match (&self.version, self.minor) {
            (Some(v), Some(_)) => format!("Istio {v}"),
            _ => "an unknown Istio version (istiod's image has no version tag)".to_string(),
        }
    }

    /// The labels `istio.labels` adds (1.24 on), for the chart of this version.
    fn helm_labels(&self) -> Vec<(String, String)> {
        let mut labels = vec![
            ("app.kubernetes.io/managed-by".into(), "Helm".into()),
            ("app.kubernetes.io/instance".into(), ISTIOCTL_RELEASE.into()),
            ("app.kubernetes.io/part-of".into(), "istio".into()),
        ];
        if let Some(version) = &self.version {
            labels.push(("app.kubernetes.io/version".into(), version.clone()));
            let chart: String = format!("istiod-{version}").replace('+', "_");
            let chart: String = chart.chars().take(63).collect();
            labels.push((
                "helm.sh/chart".into(),
                chart.trim_end_matches('-').to_string(),
            ));
        }
        labels
    }
}

/// What istioctl reads from the revision's own webhook configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Canonical<'a> {
    pub configuration: &'a WebhookConfigurationInfo,
    /// Its first webhook whose name ends with `sidecar-injector.istio.io`.
    pub webhook: &'a WebhookInfo,
}

impl<'a> Canonical<'a> {
    /// The configuration labelled `istio.io/rev=<revision>` and not
    /// `istio.io/tag` (`GetWebhooksWithRevision`), which must be exactly
    /// one and hold an injector webhook.
    pub fn find(
        configurations: &'a [WebhookConfigurationInfo],
        revision: &str,
    ) -> Result<Canonical<'a>, String> {
        let found: Vec<&WebhookConfigurationInfo> = configurations
            .iter()
            .filter(|c| {
                c.labels.get("istio.io/rev").map(String::as_str) == Some(revision)
                    && !c.labels.contains_key("istio.io/tag")
            })
            .collect();
        let configuration = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(format!(
                    "revision {revision} has no injector webhook configuration of its own (a MutatingWebhookConfiguration labelled istio.io/rev={revision} and not istio.io/tag), which the tag's webhooks are made from"
                ));
            }
            many => {
                return Err(format!(
                    "revision {revision} has {} webhook configurations labelled istio.io/rev={revision} ({}); istioctl refuses to choose, and so does this",
                    many.len(),
                    many.iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        };
        let webhook = configuration
            .webhooks
            .iter()
            .find(|w| w.name.ends_with(INJECTOR_WEBHOOK_SUFFIX))
            .ok_or_else(|| {
                format!(
                    "webhook configuration {} of revision {revision} has no webhook named *.{INJECTOR_WEBHOOK_SUFFIX}",
                    configuration.name
                )
            })?;
        Ok(Canonical {
            configuration,
            webhook,
        })
    }

    /// Its `istio.io/rev` label: what the tag's configuration is labelled
    /// with, and (`default` standing for none) the revision the chart
    /// names its Service after.
    pub fn revision_label(&self) -> &str {
        self.configuration
            .labels
            .get("istio.io/rev")
            .map(String::as_str)
            .unwrap_or("default")
    }
}

fn string_map(pairs: impl IntoIterator<Item = (String, String)>) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// The labels istioctl ends with: the chart's, then the revision's own
/// configuration's (without `app`) over them, without the operator's.
fn merged_labels(chart: BTreeMap<String, String>, canonical: &Labels) -> BTreeMap<String, String> {
    let mut labels = chart;
    for (key, value) in canonical {
        if key != "app" {
            labels.insert(key.clone(), value.clone());
        }
    }
    labels.retain(|key, _| !key.contains("operator.istio.io"));
    labels
}

/// One webhook of the tag's configuration: the chart's `core` with the
/// revision's client settings, and the two selectors.
fn tag_webhook(
    prefix: &str,
    canonical: &Canonical<'_>,
    istio_namespace: &str,
    layout: &ChartLayout,
    namespace_selector: Value,
    object_selector: Value,
) -> Value {
    let source = canonical.webhook;
    let mut client_config = Map::new();
    match (&source.service, &source.url) {
        (None, Some(url)) => {
            client_config.insert("url".into(), json!(url));
        }
        (service, _) => {
            // The chart's service is istiod[-<rev>]; istioctl (1.26 on)
            // takes the revision's own, which is the same name on a
            // standard install and the right one on any other.
            let revision = canonical.revision_label();
            let chart_name = if revision == "default" {
                "istiod".to_string()
            } else {
                format!("istiod-{revision}")
            };
            let name = service.as_ref().map_or(chart_name, |s| s.name.clone());
            let path = service
                .as_ref()
                .and_then(|s| s.path.clone())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/inject".to_string());
            client_config.insert(
                "service".into(),
                json!({"name": name, "namespace": istio_namespace, "path": path, "port": 443}),
            );
        }
    }
    if let Some(bundle) = &source.ca_bundle {
        client_config.insert("caBundle".into(), json!(bundle));
    }
    let mut webhook = Map::new();
    webhook.insert(
        "name".into(),
        json!(format!("{prefix}{INJECTOR_WEBHOOK_SUFFIX}")),
    );
    webhook.insert("clientConfig".into(), Value::Object(client_config));
    webhook.insert("sideEffects".into(), json!("None"));
    webhook.insert(
        "rules".into(),
        json!([{
            "operations": ["CREATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
        }]),
    );
    webhook.insert("failurePolicy".into(), json!("Fail"));
    if layout.renders_reinvocation_policy() {
        let policy = source
            .reinvocation_policy
            .clone()
            .unwrap_or_else(|| "Never".to_string());
        webhook.insert("reinvocationPolicy".into(), json!(policy));
    }
    webhook.insert(
        "admissionReviewVersions".into(),
        json!(layout.admission_review_versions()),
    );
    webhook.insert("namespaceSelector".into(), namespace_selector);
    webhook.insert("objectSelector".into(), object_selector);
    Value::Object(webhook)
}

fn expression(key: &str, operator: &str, values: &[&str]) -> Value {
    if values.is_empty() {
        json!({"key": key, "operator": operator})
    } else {
        json!({"key": key, "operator": operator, "values": values})
    }
}

/// The webhooks of `revision-tags.yaml` for `tag`, in the chart's order:
/// `rev.namespace.`, `rev.object.`, and for `default` also `namespace.`
/// and `object.` (istioctl leaves `enableNamespacesByDefault` off, so no
/// `auto.`).
fn tag_webhooks(
    tag: &str,
    canonical: &Canonical<'_>,
    istio_namespace: &str,
    layout: &ChartLayout,
) -> Vec<Value> {
    let not_opted_out = || expression("sidecar.istio.io/inject", "NotIn", &["false"]);
    let hook = |prefix: &str, ns: Value, obj: Value| {
        tag_webhook(prefix, canonical, istio_namespace, layout, ns, obj)
    };
    let mut hooks = vec![
        hook(
            "rev.namespace.",
            json!({"matchExpressions": [
                expression("istio.io/rev", "In", &[tag]),
                expression("istio-injection", "DoesNotExist", &[]),
            ]}),
            json!({"matchExpressions": [not_opted_out()]}),
        ),
        hook(
            "rev.object.",
            json!({"matchExpressions": [
                expression("istio.io/rev", "DoesNotExist", &[]),
                expression("istio-injection", "DoesNotExist", &[]),
            ]}),
            json!({"matchExpressions": [
                not_opted_out(),
                expression("istio.io/rev", "In", &[tag]),
            ]}),
        ),
    ];
    if tag == "default" {
        hooks.push(hook(
            "namespace.",
            json!({"matchExpressions": [expression("istio-injection", "In", &["enabled"])]}),
            json!({"matchExpressions": [not_opted_out()]}),
        ));
        hooks.push(hook(
            "object.",
            json!({"matchExpressions": [
                expression("istio-injection", "DoesNotExist", &[]),
                expression("istio.io/rev", "DoesNotExist", &[]),
            ]}),
            json!({"matchExpressions": [
                expression("sidecar.istio.io/inject", "In", &["true"]),
                expression("istio.io/rev", "DoesNotExist", &[]),
            ]}),
        ));
    }
    hooks
}

/// The tag's MutatingWebhookConfiguration, as `istioctl tag set <tag>
/// --revision <rev>` of `layout`'s version writes it, with `record` (the
/// plugin's `mesh-upgrade.io/*` annotations) added.
pub fn tag_webhook_configuration(
    tag: &str,
    canonical: &Canonical<'_>,
    istio_namespace: &str,
    layout: &ChartLayout,
    record: &[(String, String)],
) -> Value {
    let mut chart_labels: BTreeMap<String, String> = BTreeMap::from([
        ("istio.io/tag".to_string(), tag.to_string()),
        (
            "istio.io/rev".to_string(),
            canonical.revision_label().to_string(),
        ),
        (
            "install.operator.istio.io/owning-resource".to_string(),
            "unknown".to_string(),
        ),
        (
            "operator.istio.io/component".to_string(),
            "Pilot".to_string(),
        ),
        ("app".to_string(), "sidecar-injector".to_string()),
        ("release".to_string(), ISTIOCTL_RELEASE.to_string()),
    ]);
    if layout.renders_helm_labels() {
        chart_labels.insert("app.kubernetes.io/name".into(), "istiod".into());
        chart_labels.extend(layout.helm_labels());
    }
    let labels = merged_labels(chart_labels, &canonical.configuration.labels);
    let mut annotations: BTreeMap<String, String> = canonical
        .configuration
        .annotations
        .iter()
        .filter(|(key, _)| !key.starts_with(RECORD_ANNOTATION_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    annotations.extend(record.iter().cloned());
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(tag_webhook_name(tag, istio_namespace)));
    metadata.insert("labels".into(), Value::Object(string_map(labels)));
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(string_map(annotations)));
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": metadata,
        "webhooks": tag_webhooks(tag, canonical, istio_namespace, layout),
    })
}

/// The tag's Service (`revision-tags-svc.yaml`, Istio 1.28 on), as
/// `istioctl tag set <tag> --revision <revision>` writes it: the chart's
/// labels without the operator's, selecting `revision`'s istiod (by
/// `istio: pilot` when the revision is empty, as the chart does).
pub fn tag_service(
    tag: &str,
    revision: &str,
    istio_namespace: &str,
    layout: &ChartLayout,
    record: &[(String, String)],
) -> Value {
    let mut labels: BTreeMap<String, String> = BTreeMap::from([
        ("istio.io/rev".to_string(), revision.to_string()),
        ("istio.io/tag".to_string(), tag.to_string()),
        (
            "install.operator.istio.io/owning-resource".to_string(),
            "unknown".to_string(),
        ),
        (
            "operator.istio.io/component".to_string(),
            "Pilot".to_string(),
        ),
        ("app".to_string(), "istiod".to_string()),
        ("istio".to_string(), "pilot".to_string()),
        ("release".to_string(), ISTIOCTL_RELEASE.to_string()),
        ("app.kubernetes.io/name".to_string(), "istiod".to_string()),
    ]);
    labels.extend(layout.helm_labels());
    labels.retain(|key, _| !key.contains("operator.istio.io"));
    let selector = if revision.is_empty() {
        json!({"app": "istiod", "istio": "pilot"})
    } else {
        json!({"app": "istiod", "istio.io/rev": revision})
    };
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(tag_service_name(tag)));
    metadata.insert("namespace".into(), json!(istio_namespace));
    if !record.is_empty() {
        metadata.insert(
            "annotations".into(),
            Value::Object(string_map(record.iter().cloned())),
        );
    }
    metadata.insert("labels".into(), Value::Object(string_map(labels)));
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "ports": [
                {"port": 15010, "name": "grpc-xds", "protocol": "TCP"},
                {"port": 15012, "name": "https-dns", "protocol": "TCP"},
                {"port": 443, "name": "https-webhook", "targetPort": 15017, "protocol": "TCP"},
                {"port": 15014, "name": "http-monitoring", "protocol": "TCP"},
            ],
            "selector": selector,
        },
    })
}
