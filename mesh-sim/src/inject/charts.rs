//! The objects Istio's charts install for a revision and for a revision tag.
//!
//! The injector in the parent module decides nothing from label rules: it
//! evaluates the webhook configurations it finds. So the webhook
//! configurations scenarios, tests and the generator install must be the ones
//! Istio's `istio-discovery` chart (`mutatingwebhook.yaml`,
//! `revision-tags-mwc.yaml`) and `istioctl tag set` produce; this module is
//! the one place that builds them, so they stay consistent everywhere.
//!
//! | object | default install (`rev: None`) | revision `<rev>` |
//! |---|---|---|
//! | istiod Deployment / Service | `istiod` | `istiod-<rev>` |
//! | injector ConfigMap | `istio-sidecar-injector` | `istio-sidecar-injector-<rev>` |
//! | MutatingWebhookConfiguration | `istio-sidecar-injector`: `rev.namespace.`, `rev.object.`, `namespace.`, `object.` | `istio-sidecar-injector-<rev>`: `rev.namespace.`, `rev.object.` |
//!
//! A tag is one MutatingWebhookConfiguration `istio-revision-tag-<tag>`
//! pointing at its revision's Service; the `default` tag also carries the
//! `namespace.`/`object.` webhooks, and when it is moved the default
//! install's own `namespace.`/`object.` webhooks are rewritten to a selector
//! that never matches (as `istioctl tag set default` does).

use serde_json::{Value, json};

use super::ISTIO_NAMESPACE;

/// How a revision is installed, beyond its name and version.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionOptions {
    /// Registry and path of Istio's images (`docker.io/istio`).
    pub hub: String,
    /// Image variant appended to the tag (`distroless` → `1.22.3-distroless`).
    pub variant: Option<String>,
    /// istiod runs with `ENABLE_NATIVE_SIDECARS=true`.
    pub native_sidecars: bool,
    pub istiod_replicas: u32,
    /// Install the injector ConfigMap (hub and tag). Without it the proxy
    /// image is derived from the istiod image, as for hand-made installs.
    pub injector_configmap: bool,
    /// For the default install only: the `default` tag has been moved to
    /// another revision, so every webhook of this install's configuration
    /// never matches (as `istioctl tag set default` leaves it).
    pub default_webhooks_deactivated: bool,
    /// `global.proxy.autoInject`, written as the injector config's `policy`
    /// (`enabled`, `disabled`).
    pub auto_inject: String,
    /// `sidecarInjectorWebhook.neverInjectSelector` (label selectors).
    pub never_inject_selector: Vec<Value>,
    /// `sidecarInjectorWebhook.alwaysInjectSelector` (label selectors).
    pub always_inject_selector: Vec<Value>,
    /// `global.proxy.image` (default `proxyv2`): a name under the hub, or a
    /// whole image reference (with a `/`), which then ignores hub and tag.
    pub proxy_image: Option<String>,
    /// `sidecarInjectorWebhook.enableNamespacesByDefault`: the default
    /// install also gets the `auto.` webhook, which injects namespaces that
    /// carry no injection label (the system namespaces excepted).
    pub enable_namespaces_by_default: bool,
}

impl Default for RevisionOptions {
    fn default() -> Self {
        RevisionOptions {
            hub: "docker.io/istio".to_string(),
            variant: None,
            native_sidecars: false,
            istiod_replicas: 1,
            injector_configmap: true,
            default_webhooks_deactivated: false,
            auto_inject: "enabled".to_string(),
            never_inject_selector: Vec::new(),
            always_inject_selector: Vec::new(),
            enable_namespaces_by_default: false,
            proxy_image: None,
        }
    }
}

/// `1.22.3` → `1-22-3`: revision names cannot contain dots.
pub fn revision_name(version: &str) -> String {
    version.replace('.', "-")
}

/// The label value and name suffix of a revision: `default` for the
/// unrevisioned install.
fn rev_label(rev: Option<&str>) -> &str {
    rev.unwrap_or("default")
}

fn suffixed(base: &str, rev: Option<&str>) -> String {
    match rev {
        Some(rev) => format!("{base}-{rev}"),
        None => base.to_string(),
    }
}

/// The istiod Service name that serves a revision.
pub fn istiod_service_name(rev: Option<&str>) -> String {
    suffixed("istiod", rev)
}

/// Everything one revision installs in `istio-system`: the istiod Deployment
/// and Service, the injector ConfigMap (unless disabled) and the sidecar
/// injector MutatingWebhookConfiguration, in the order to apply them.
pub fn istio_revision_objects(
    rev: Option<&str>,
    version: &str,
    opts: &RevisionOptions,
) -> Vec<Value> {
    let mut objects = vec![istiod_deployment(rev, version, opts), istiod_service(rev)];
    if opts.injector_configmap {
        objects.push(injector_configmap(rev, version, opts));
    }
    let mut webhooks = injector_webhook_configuration(rev, opts.default_webhooks_deactivated);
    if rev.is_none() && opts.enable_namespaces_by_default {
        let mut auto = auto_webhook(&istiod_service_name(rev));
        if opts.default_webhooks_deactivated {
            auto["namespaceSelector"] = never_match();
            auto["objectSelector"] = never_match();
        }
        if let Some(list) = webhooks["webhooks"].as_array_mut() {
            list.push(auto);
        }
    }
    objects.push(webhooks);
    objects
}

/// [`istio_revision_objects`] as multi-document YAML.
pub fn istio_revision_manifests(
    rev: Option<&str>,
    version: &str,
    opts: &RevisionOptions,
) -> String {
    to_yaml_documents(&istio_revision_objects(rev, version, opts))
}

/// The MutatingWebhookConfiguration `istioctl tag set <tag> --revision <rev>`
/// installs (`rev: None` points the tag at the default install).
pub fn revision_tag_objects(tag: &str, rev: Option<&str>) -> Vec<Value> {
    let service = istiod_service_name(rev);
    let mut webhooks = vec![
        rev_namespace_webhook(&service, tag),
        rev_object_webhook(&service, tag),
    ];
    if tag == "default" {
        webhooks.push(default_namespace_webhook(&service));
        webhooks.push(default_object_webhook(&service));
    }
    vec![json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": format!("istio-revision-tag-{tag}"),
            "labels": {
                "app": "sidecar-injector",
                "istio.io/rev": rev_label(rev),
                "istio.io/tag": tag,
            },
        },
        "webhooks": webhooks,
    })]
}

/// The Service the istio-discovery chart renders for each of its
/// `revisionTags` from Istio 1.28 (`revision-tags-svc.yaml`):
/// `istiod-revision-tag-<tag>` in `istio-system`, labelled `istio.io/tag` and
/// `istio.io/rev`, selecting the revision's istiod like the revision's own
/// Service. istiod and `istioctl tag list` read tags from these as well as
/// from the webhook configurations.
pub fn revision_tag_service(tag: &str, rev: Option<&str>) -> Value {
    let mut service = istiod_service(rev);
    service["metadata"]["name"] = json!(format!("istiod-revision-tag-{tag}"));
    service["metadata"]["labels"]["istio.io/tag"] = json!(tag);
    if rev.is_none() {
        // The default revision's Service selects by `istio: pilot`, so that
        // it does not pick a canary's pods.
        service["spec"]["selector"] = json!({"app": "istiod", "istio": "pilot"});
    }
    service
}

/// [`revision_tag_objects`] as YAML.
pub fn revision_tag_manifest(tag: &str, rev: Option<&str>) -> String {
    to_yaml_documents(&revision_tag_objects(tag, rev))
}

/// The revision's own injector configuration: `rev.namespace.` and
/// `rev.object.` for every revision, plus `namespace.` and `object.` for the
/// default install (never matching once the `default` tag moved away).
pub fn injector_webhook_configuration(rev: Option<&str>, default_deactivated: bool) -> Value {
    let service = istiod_service_name(rev);
    let label = rev_label(rev);
    let mut webhooks = vec![
        rev_namespace_webhook(&service, label),
        rev_object_webhook(&service, label),
    ];
    if rev.is_none() {
        webhooks.push(default_namespace_webhook(&service));
        webhooks.push(default_object_webhook(&service));
        if default_deactivated {
            // `istioctl tag set default` rewrites every webhook of the
            // default revision's configuration (istioctl/pkg/tag/util.go,
            // DeactivateIstioInjectionWebhook), the rev. ones included: the
            // `default` tag's own webhooks serve `istio.io/rev=default` now.
            for webhook in &mut webhooks {
                webhook["namespaceSelector"] = never_match();
                webhook["objectSelector"] = never_match();
            }
        }
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": suffixed("istio-sidecar-injector", rev),
            "labels": {"app": "sidecar-injector", "istio.io/rev": label},
        },
        "webhooks": webhooks,
    })
}

/// The part every injector webhook shares: pods CREATE, sent to the
/// revision's istiod Service at `/inject`, failing closed.
fn core_webhook(prefix: &str, service: &str) -> Value {
    json!({
        "name": format!("{prefix}sidecar-injector.istio.io"),
        "clientConfig": {
            "service": {"name": service, "namespace": ISTIO_NAMESPACE, "path": "/inject", "port": 443},
        },
        "sideEffects": "None",
        "rules": [{
            "operations": ["CREATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
        }],
        "failurePolicy": "Fail",
        "reinvocationPolicy": "Never",
        "admissionReviewVersions": ["v1"],
    })
}

fn expression(key: &str, operator: &str, values: &[&str]) -> Value {
    if values.is_empty() {
        json!({"key": key, "operator": operator})
    } else {
        json!({"key": key, "operator": operator, "values": values})
    }
}

/// Namespace labelled `istio.io/rev=<value>` (and not `istio-injection`,
/// which takes precedence), pod not opted out.
fn rev_namespace_webhook(service: &str, value: &str) -> Value {
    let mut webhook = core_webhook("rev.namespace.", service);
    webhook["namespaceSelector"] = json!({"matchExpressions": [
        expression("istio.io/rev", "In", &[value]),
        expression("istio-injection", "DoesNotExist", &[]),
    ]});
    webhook["objectSelector"] = json!({"matchExpressions": [
        expression("sidecar.istio.io/inject", "NotIn", &["false"]),
    ]});
    webhook
}

/// Unlabelled namespace, pod labelled `istio.io/rev=<value>` and not opted out.
fn rev_object_webhook(service: &str, value: &str) -> Value {
    let mut webhook = core_webhook("rev.object.", service);
    webhook["namespaceSelector"] = json!({"matchExpressions": [
        expression("istio.io/rev", "DoesNotExist", &[]),
        expression("istio-injection", "DoesNotExist", &[]),
    ]});
    webhook["objectSelector"] = json!({"matchExpressions": [
        expression("sidecar.istio.io/inject", "NotIn", &["false"]),
        expression("istio.io/rev", "In", &[value]),
    ]});
    webhook
}

/// What a moved `default` tag leaves on the old default install.
fn never_match() -> Value {
    json!({"matchLabels": {"istio.io/deactivated": "never-match"}})
}

/// Namespace labelled `istio-injection=enabled`, pod not opted out.
fn default_namespace_webhook(service: &str) -> Value {
    let mut webhook = core_webhook("namespace.", service);
    webhook["namespaceSelector"] = json!({"matchExpressions": [
        expression("istio-injection", "In", &["enabled"]),
    ]});
    webhook["objectSelector"] = json!({"matchExpressions": [
        expression("sidecar.istio.io/inject", "NotIn", &["false"]),
    ]});
    webhook
}

/// Unlabelled namespace, pod opted in with `sidecar.istio.io/inject=true` and
/// naming no revision of its own.
fn default_object_webhook(service: &str) -> Value {
    let mut webhook = core_webhook("object.", service);
    webhook["namespaceSelector"] = json!({"matchExpressions": [
        expression("istio-injection", "DoesNotExist", &[]),
        expression("istio.io/rev", "DoesNotExist", &[]),
    ]});
    webhook["objectSelector"] = json!({"matchExpressions": [
        expression("sidecar.istio.io/inject", "In", &["true"]),
        expression("istio.io/rev", "DoesNotExist", &[]),
    ]});
    webhook
}

/// `enableNamespacesByDefault`: a namespace without injection labels (and
/// not a system one), pod neither opting in or out nor naming a revision.
fn auto_webhook(service: &str) -> Value {
    let mut webhook = core_webhook("auto.", service);
    webhook["namespaceSelector"] = json!({"matchExpressions": [
        expression("istio-injection", "DoesNotExist", &[]),
        expression("istio.io/rev", "DoesNotExist", &[]),
        expression(
            "kubernetes.io/metadata.name",
            "NotIn",
            &["kube-system", "kube-public", "kube-node-lease", "local-path-storage"],
        ),
    ]});
    webhook["objectSelector"] = json!({"matchExpressions": [
        expression("sidecar.istio.io/inject", "DoesNotExist", &[]),
        expression("istio.io/rev", "DoesNotExist", &[]),
    ]});
    webhook
}

fn image_tag(version: &str, opts: &RevisionOptions) -> String {
    match opts.variant.as_deref().filter(|v| !v.is_empty()) {
        Some(variant) => format!("{version}-{variant}"),
        None => version.to_string(),
    }
}

fn istiod_labels(rev: Option<&str>) -> Value {
    json!({"app": "istiod", "istio.io/rev": rev_label(rev)})
}

fn istiod_deployment(rev: Option<&str>, version: &str, opts: &RevisionOptions) -> Value {
    let mut env = vec![
        json!({"name": "REVISION", "value": rev_label(rev)}),
        json!({"name": "PILOT_CERT_PROVIDER", "value": "istiod"}),
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        json!({"name": "ISTIOD_ADDR", "value": format!("{}.{ISTIO_NAMESPACE}.svc:15012", istiod_service_name(rev))}),
    ];
    if opts.native_sidecars {
        env.push(json!({"name": "ENABLE_NATIVE_SIDECARS", "value": "true"}));
    }
    let mut labels = istiod_labels(rev);
    labels["istio"] = json!("pilot");
    let mut template_labels = labels.clone();
    template_labels["sidecar.istio.io/inject"] = json!("false");
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": istiod_service_name(rev),
            "namespace": ISTIO_NAMESPACE,
            "labels": labels,
        },
        "spec": {
            "replicas": opts.istiod_replicas,
            "selector": {"matchLabels": istiod_labels(rev)},
            "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": template_labels},
                "spec": {
                    "serviceAccountName": suffixed("istiod", rev),
                    "containers": [{
                        "name": "discovery",
                        "image": format!("{}/pilot:{}", opts.hub, image_tag(version, opts)),
                        "args": [
                            "discovery",
                            "--monitoringAddr=:15014",
                            "--log_output_level=default:info",
                            "--domain",
                            "cluster.local",
                            "--keepaliveMaxServerConnectionAge",
                            "30m",
                        ],
                        "ports": [
                            {"containerPort": 8080, "protocol": "TCP"},
                            {"containerPort": 15010, "protocol": "TCP"},
                            {"containerPort": 15017, "protocol": "TCP"},
                        ],
                        "env": env,
                        "readinessProbe": {
                            "httpGet": {"path": "/ready", "port": 8080},
                            "initialDelaySeconds": 1,
                            "periodSeconds": 3,
                            "timeoutSeconds": 5,
                        },
                        "resources": {"requests": {"cpu": "500m", "memory": "2048Mi"}},
                    }],
                },
            },
        },
    })
}

fn istiod_service(rev: Option<&str>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": istiod_service_name(rev),
            "namespace": ISTIO_NAMESPACE,
            "labels": {"app": "istiod", "istio": "pilot", "istio.io/rev": rev_label(rev)},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": istiod_labels(rev),
            "ports": [
                {"name": "grpc-xds", "port": 15010, "protocol": "TCP"},
                {"name": "https-dns", "port": 15012, "protocol": "TCP"},
                {"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"},
                {"name": "http-monitoring", "port": 15014, "protocol": "TCP"},
            ],
        },
    })
}

fn injector_configmap(rev: Option<&str>, version: &str, opts: &RevisionOptions) -> Value {
    let mut global = json!({
        "hub": opts.hub,
        "tag": version,
        "proxy": {"image": opts.proxy_image.as_deref().unwrap_or("proxyv2")},
        "proxy_init": {"image": "proxyv2"},
        "istioNamespace": ISTIO_NAMESPACE,
    });
    if let Some(variant) = opts.variant.as_deref().filter(|v| !v.is_empty()) {
        global["variant"] = json!(variant);
    }
    let values = json!({
        "global": global,
        "revision": rev.unwrap_or(""),
        "sidecarInjectorWebhook": {
            "defaultTemplates": [],
            "enableNamespacesByDefault": opts.enable_namespaces_by_default,
            "rewriteAppHTTPProbe": true,
        },
    });
    // The chart writes `policy: {{ .Values.global.proxy.autoInject }}` and
    // the selectors with toYaml (istiod-injector-configmap.yaml).
    let selectors = |list: &[Value]| {
        if list.is_empty() {
            " []\n".to_string()
        } else {
            format!("\n{}", serde_yaml::to_string(list).unwrap_or_default())
        }
    };
    let config = format!(
        "defaultTemplates: [sidecar]\npolicy: {}\nalwaysInjectSelector:{}neverInjectSelector:{}injectedAnnotations: {{}}\n",
        opts.auto_inject,
        selectors(&opts.always_inject_selector),
        selectors(&opts.never_inject_selector),
    );
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": suffixed("istio-sidecar-injector", rev),
            "namespace": ISTIO_NAMESPACE,
            "labels": {"app": "sidecar-injector", "istio.io/rev": rev_label(rev)},
        },
        "data": {
            "values": serde_json::to_string_pretty(&values).unwrap_or_default(),
            "config": config,
        },
    })
}

/// Objects as `---`-separated YAML documents.
pub fn to_yaml_documents(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| serde_yaml::to_string(o).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("---\n")
}
