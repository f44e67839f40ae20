//! Mutating admission for pods, with Istio's sidecar injector behind it.
//!
//! Nothing here decides *which* revision injects a pod from label rules. The
//! decision is made the way the API server makes it: every
//! MutatingWebhookConfiguration webhook whose rules cover pod CREATE is matched
//! by its `namespaceSelector` (against the namespace's labels) and
//! `objectSelector` (against the pod's labels). A matching webhook whose
//! `clientConfig.service` lives in `istio-system` is "called": the sim finds
//! that Service's Ready pods (an istiod), and that istiod's revision and
//! version define the proxy. Precedence between `istio-injection` and
//! `istio.io/rev`, revision tags, opt-outs and pod-level revisions therefore
//! come out of the webhook configurations Istio's charts generate, which
//! [`istio_revision_objects`] and [`revision_tag_objects`] reproduce.
//!
//! ```text
//!   pod CREATE ─> MWCs sorted by name ─> webhooks in order
//!                   │ rules cover pods/CREATE? namespaceSelector? objectSelector?
//!                   v
//!                 clientConfig.service (istio-system/istiod-<rev>)
//!                   │ Ready pods behind it?  no ─> failurePolicy Fail: refuse
//!                   v                                 Ignore: let through
//!                 istiod (revision, image, env) + injector ConfigMap (hub, tag)
//!                   │
//!                   v
//!                 Istio's own checks (already injected, ambient, hostNetwork…)
//!                   │
//!                   v
//!                 sidecar or gateway template applied to the pod
//! ```
//!
//! A pod already carrying `sidecar.istio.io/status` is left alone by the
//! injector, which is what makes a second matching webhook a no-op and what
//! lets scenarios load pods "injected long ago" unchanged.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::resources::kinds;
use crate::selectors::{WhenAbsent, labels_of, optional_label_selector_matches};
use crate::store::Store;

pub mod ambient;
pub mod charts;

pub use ambient::{
    AmbientChartOptions, ISTIO_CNI_APP, ZTUNNEL_APP, istio_cni_daemonset, ztunnel_daemonset,
};
pub use charts::{
    RevisionOptions, injector_webhook_configuration, istio_revision_manifests,
    istio_revision_objects, revision_name, revision_tag_manifest, revision_tag_objects,
    revision_tag_service,
};

/// Where Istio's control plane lives; only webhooks backed by a Service in
/// this namespace are simulated as Istio injectors.
pub const ISTIO_NAMESPACE: &str = "istio-system";

/// The annotation Istio's injector writes, and reads to skip injected pods.
pub const STATUS_ANNOTATION: &str = "sidecar.istio.io/status";

/// The volumes the injector adds, in the order the status annotation lists them.
const INJECTED_VOLUMES: [&str; 5] = [
    "istio-envoy",
    "istio-data",
    "istio-podinfo",
    "istio-token",
    "istiod-ca-cert",
];

/// Namespaces Istio's injector never injects, whatever the webhooks say.
const IGNORED_NAMESPACES: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

/// Annotation on a MutatingWebhookConfiguration marking it as a registry
/// mirror the sim answers for: images starting with this prefix...
pub const MIRROR_FROM_ANNOTATION: &str = "mesh-sim.io/rewrite-image-from";
/// ...get this prefix instead.
pub const MIRROR_TO_ANNOTATION: &str = "mesh-sim.io/rewrite-image-to";

/// Runs the mutating admission webhooks that cover pod CREATE on `pod`.
///
/// Webhooks are called in the API server's order (configurations sorted by
/// name, webhooks in their listed order). An Istio webhook whose istiod has
/// no Ready pod refuses the creation unless its `failurePolicy` is `Ignore`.
/// A dry run (`dryRun=All`) calls the same webhooks with the same effects
/// (the caller then stores nothing), but the API server refuses it outright
/// when a matching webhook does not declare `sideEffects: None` or
/// `NoneOnDryRun`. A configuration annotated with [`MIRROR_FROM_ANNOTATION`]
/// and [`MIRROR_TO_ANNOTATION`] stands for a registry-mirroring webhook
/// (the kind many companies run): the sim answers it by rewriting the
/// matching container and init-container images.
pub fn admit_pod(store: &Store, pod: &mut Value, dry_run: bool) -> ApiResult<()> {
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let namespace_labels = store
        .get(kinds::namespaces(), "", &namespace)
        .map(|ns| labels_of(&ns))
        .unwrap_or_default();
    // The store keeps cluster-scoped objects ordered by name, which is the
    // order the API server calls configurations in.
    let configurations: Vec<_> = store.list(kinds::mutating_webhooks(), None).collect();
    for configuration in configurations {
        let Some(webhooks) = configuration.get("webhooks").and_then(Value::as_array) else {
            continue;
        };
        let annotations = string_map(configuration.pointer("/metadata/annotations"));
        let mirror = annotations
            .get(MIRROR_FROM_ANNOTATION)
            .zip(annotations.get(MIRROR_TO_ANNOTATION));
        for webhook in webhooks {
            if !covers_pod_create(webhook)
                || !selector_matches(webhook.get("namespaceSelector"), &namespace_labels)
                || !selector_matches(webhook.get("objectSelector"), &labels_of(pod))
            {
                continue;
            }
            let side_effects = webhook
                .get("sideEffects")
                .and_then(Value::as_str)
                .unwrap_or("");
            if dry_run && !matches!(side_effects, "None" | "NoneOnDryRun") {
                let name = webhook.get("name").and_then(Value::as_str).unwrap_or("");
                return Err(ApiError::bad_request(format!(
                    "admission webhook \"{name}\" does not support dry run"
                )));
            }
            match mirror {
                Some((from, to)) => rewrite_images(pod, from, to),
                None => call_webhook(store, webhook, pod)?,
            }
        }
    }
    Ok(())
}

/// A registry-mirroring MutatingWebhookConfiguration, `registry-mirror`: it
/// covers pod CREATE everywhere but the system namespaces, fails open, has
/// no side effects, and (its name sorting after `istio-*`) is called after
/// Istio's injectors, so it rewrites the proxy image they chose. The sim
/// answers it through [`MIRROR_FROM_ANNOTATION`] and [`MIRROR_TO_ANNOTATION`]
/// (`docker.io/istio/` → `mirror.example.com/istio/`).
pub fn registry_mirror_webhook(from: &str, to: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": "registry-mirror",
            "annotations": {MIRROR_FROM_ANNOTATION: from, MIRROR_TO_ANNOTATION: to},
        },
        "webhooks": [{
            "name": "rewrite.registry-mirror.example.com",
            "clientConfig": {
                "service": {"name": "registry-mirror", "namespace": "registry-mirror", "path": "/mutate", "port": 443},
            },
            "rules": [{
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
            }],
            "namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": ["kube-system", "kube-public", "kube-node-lease"],
            }]},
            "sideEffects": "None",
            "failurePolicy": "Ignore",
            "reinvocationPolicy": "Never",
            "admissionReviewVersions": ["v1"],
        }],
    })
}

/// A registry mirror's answer: every container and init container image
/// starting with `from` starts with `to` instead.
fn rewrite_images(pod: &mut Value, from: &str, to: &str) {
    for list in ["containers", "initContainers"] {
        let Some(containers) = pod
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for container in containers {
            let Some(image) = container.get("image").and_then(Value::as_str) else {
                continue;
            };
            if let Some(rest) = image.strip_prefix(from) {
                container["image"] = json!(format!("{to}{rest}"));
            }
        }
    }
}

/// Injects `pod` as `revision`'s istiod would, without evaluating any
/// webhook: for generators that build a cluster as it looks after the fact
/// (pods injected long ago, perhaps by a revision since replaced). Istio's own
/// checks still apply, so an already-injected pod is left alone.
pub fn inject_as(pod: &mut Value, revision: &str, proxy_image: &str, native_sidecars: bool) {
    let service = if revision == "default" {
        "istiod".to_string()
    } else {
        format!("istiod-{revision}")
    };
    let injector = Injector {
        revision: revision.to_string(),
        images: ProxyImages::Fixed(proxy_image.to_string()),
        native_sidecars,
        service,
        policy: InjectionPolicy::standard(),
    };
    injector.inject(pod);
}

/// Whether a webhook's `rules` include CREATE of core `pods`.
fn covers_pod_create(webhook: &Value) -> bool {
    let contains = |rule: &Value, field: &str, wanted: &[&str]| {
        rule.get(field)
            .and_then(Value::as_array)
            .is_some_and(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|item| wanted.contains(&item))
            })
    };
    webhook
        .get("rules")
        .and_then(Value::as_array)
        .is_some_and(|rules| {
            rules.iter().any(|rule| {
                contains(rule, "operations", &["CREATE", "*"])
                    && contains(rule, "apiGroups", &["", "*"])
                    && contains(rule, "resources", &["pods", "*"])
            })
        })
}

/// Evaluates a webhook's (or Deployment's) `metav1.LabelSelector` as the API
/// server does: an absent selector matches everything, and a selector that
/// cannot be evaluated matches nothing (the API server would have refused to
/// store it).
fn selector_matches(selector: Option<&Value>, labels: &BTreeMap<String, String>) -> bool {
    optional_label_selector_matches(selector, labels, WhenAbsent::MatchEverything).unwrap_or(false)
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Calls one matching webhook: resolves the istiod behind it and injects, or
/// applies the failure policy when nothing answers.
fn call_webhook(store: &Store, webhook: &Value, pod: &mut Value) -> ApiResult<()> {
    let name = webhook.get("name").and_then(Value::as_str).unwrap_or("");
    // Webhooks called by URL, or served outside istio-system, are not Istio
    // injectors the sim knows how to answer for: they are treated as
    // answering "no change".
    let Some(service) = webhook.pointer("/clientConfig/service") else {
        return Ok(());
    };
    let service_namespace = service
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if service_namespace != ISTIO_NAMESPACE {
        return Ok(());
    }
    let service_name = service.get("name").and_then(Value::as_str).unwrap_or("");
    match resolve_injector(store, service_name) {
        Ok(injector) => {
            injector.inject(pod);
            Ok(())
        }
        Err(why) => {
            if webhook.get("failurePolicy").and_then(Value::as_str) == Some("Ignore") {
                return Ok(());
            }
            let path = service.get("path").and_then(Value::as_str).unwrap_or("");
            let port = service.get("port").and_then(Value::as_u64).unwrap_or(443);
            let timeout = webhook
                .get("timeoutSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(10);
            Err(ApiError::webhook_failed(
                name,
                &format!(
                    "failed to call webhook: Post \"https://{service_name}.{service_namespace}.svc:{port}{path}?timeout={timeout}s\": {why}"
                ),
            ))
        }
    }
}

/// What an istiod answering a webhook call injects.
#[derive(Debug, Clone, PartialEq)]
struct Injector {
    /// The istiod's revision (`default` for an unrevisioned install).
    revision: String,
    /// Where this revision's proxy images come from.
    images: ProxyImages,
    /// The istiod runs with `ENABLE_NATIVE_SIDECARS=true`.
    native_sidecars: bool,
    /// The istiod Service, which proxies use as their CA address.
    service: String,
    /// The `config` of the revision's injector ConfigMap: whether istiod
    /// injects a pod it is asked about.
    policy: InjectionPolicy,
}

/// Finds the Ready istiod behind `istio-system/<service_name>`; the error is
/// the API server's reason for failing the call.
fn resolve_injector(store: &Store, service_name: &str) -> Result<Injector, String> {
    let Some(service) = store.get(kinds::services(), ISTIO_NAMESPACE, service_name) else {
        return Err(format!("service \"{service_name}\" not found"));
    };
    let no_endpoints = || format!("no endpoints available for service \"{service_name}\"");
    let selector = string_map(service.pointer("/spec/selector"));
    if selector.is_empty() {
        return Err(no_endpoints());
    }
    // Several Ready pods (a rolling istiod) answer in turn in a real cluster;
    // the sim picks the newest so an in-place upgrade takes effect as soon as
    // the new istiod is Ready.
    let istiod_pod = store
        .list(kinds::pods(), Some(ISTIO_NAMESPACE))
        .filter(|p| {
            let labels = labels_of(p);
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .filter(|p| is_ready(p) && p.pointer("/metadata/deletionTimestamp").is_none())
        .max_by(|a, b| {
            let created = |p: &Value| {
                p.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            created(a)
                .cmp(&created(b))
                .then_with(|| crate::store::ObjKey::of(a).cmp(&crate::store::ObjKey::of(b)))
        })
        .ok_or_else(no_endpoints)?;
    let deployment = istiod_deployment(store, &istiod_pod);
    let revision = deployment
        .as_ref()
        .and_then(|d| d.pointer("/metadata/labels/istio.io~1rev"))
        .or_else(|| istiod_pod.pointer("/metadata/labels/istio.io~1rev"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    // The pod is the process answering, so its container says which image
    // and flags are running (the Deployment may already be rolling on).
    let containers = istiod_pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let discovery = containers
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some("discovery"))
        .or_else(|| containers.first());
    let istiod_image = discovery
        .and_then(|c| c.get("image"))
        .and_then(Value::as_str)
        .unwrap_or("docker.io/istio/pilot:latest");
    let native_sidecars = discovery
        .and_then(|c| c.get("env"))
        .and_then(Value::as_array)
        .is_some_and(|env| {
            env.iter().any(|e| {
                e.get("name").and_then(Value::as_str) == Some("ENABLE_NATIVE_SIDECARS")
                    && e.get("value").and_then(Value::as_str) == Some("true")
            })
        });
    let configmap_name = if revision == "default" {
        "istio-sidecar-injector".to_string()
    } else {
        format!("istio-sidecar-injector-{revision}")
    };
    let configmap = store.get(kinds::configmaps(), ISTIO_NAMESPACE, &configmap_name);
    let images = configmap
        .as_ref()
        .and_then(|cm| cm.pointer("/data/values"))
        .and_then(Value::as_str)
        .and_then(ImageValues::parse)
        .map(ProxyImages::Values)
        .unwrap_or_else(|| ProxyImages::Fixed(proxy_image_from_istiod(istiod_image)));
    let policy = configmap
        .as_ref()
        .and_then(|cm| cm.pointer("/data/config"))
        .and_then(Value::as_str)
        .and_then(InjectionPolicy::from_config)
        .unwrap_or_else(InjectionPolicy::standard);
    Ok(Injector {
        revision,
        images,
        native_sidecars,
        service: service_name.to_string(),
        policy,
    })
}

/// The istiod Deployment owning `pod` (through its ReplicaSet), or else the
/// `app=istiod` Deployment whose selector matches it.
fn istiod_deployment(store: &Store, pod: &Value) -> Option<crate::store::Obj> {
    let owner_named = |obj: &Value, kind: &str| -> Option<String> {
        obj.pointer("/metadata/ownerReferences")?
            .as_array()?
            .iter()
            .find(|o| o.get("kind").and_then(Value::as_str) == Some(kind))?
            .get("name")?
            .as_str()
            .map(str::to_string)
    };
    if let Some(rs_name) = owner_named(pod, "ReplicaSet") {
        if let Some(rs) = store.get(kinds::replicasets(), ISTIO_NAMESPACE, &rs_name) {
            if let Some(deploy_name) = owner_named(&rs, "Deployment") {
                if let Some(d) = store.get(kinds::deployments(), ISTIO_NAMESPACE, &deploy_name) {
                    return Some(d);
                }
            }
        }
    }
    let pod_labels = labels_of(pod);
    store
        .list(kinds::deployments(), Some(ISTIO_NAMESPACE))
        .find(|d| {
            labels_of(d).get("app").map(String::as_str) == Some("istiod")
                && d.pointer("/spec/selector").is_some()
                && selector_matches(d.pointer("/spec/selector"), &pod_labels)
        })
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// Where an injector's images come from.
#[derive(Debug, Clone, PartialEq)]
enum ProxyImages {
    /// The injector ConfigMap's `values`.
    Values(ImageValues),
    /// One image for both containers: a revision without an injector
    /// ConfigMap (derived from istiod's image), or a generator's choice.
    Fixed(String),
}

/// The image fields of an injector ConfigMap's `values` (JSON).
#[derive(Debug, Clone, PartialEq)]
struct ImageValues {
    hub: String,
    /// `global.tag`, a string or a number as Go's `%v` prints it.
    tag: String,
    /// `global.proxy.image` (default `proxyv2`).
    proxy: String,
    /// `global.proxy_init.image` (default `proxyv2`).
    proxy_init: String,
    /// `global.variant`.
    variant: String,
}

impl ImageValues {
    fn parse(values: &str) -> Option<Self> {
        let values: Value = serde_json::from_str(values).ok()?;
        let global = values.get("global")?;
        let text = |pointer: &str| {
            global
                .pointer(pointer)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let tag = match global.get("tag") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        Some(ImageValues {
            hub: text("/hub").unwrap_or_default(),
            tag,
            proxy: text("/proxy/image").unwrap_or_else(|| "proxyv2".into()),
            proxy_init: text("/proxy_init/image").unwrap_or_else(|| "proxyv2".into()),
            variant: text("/variant").unwrap_or_default(),
        })
    }

    /// What the injection template writes for a container whose values
    /// image is `name` (`global.proxy.image` or `global.proxy_init.image`):
    /// the pod's `sidecar.istio.io/proxyImage`, else `name`, taken whole
    /// when it contains a `/`; otherwise `hub/name:tag` with the image type
    /// (`sidecar.istio.io/proxyImageType`, else `global.variant`) in place
    /// of a `-distroless`/`-debug` the tag may carry, `default` meaning none
    /// (`imageURL` and `updateImageTypeIfPresent` in
    /// pkg/kube/inject/inject.go).
    fn render(&self, name: &str, annotations: &BTreeMap<String, String>) -> String {
        let chosen = annotations
            .get("sidecar.istio.io/proxyImage")
            .map(String::as_str)
            .unwrap_or(name);
        if chosen.contains('/') {
            return chosen.to_string();
        }
        let image_type = annotations
            .get("sidecar.istio.io/proxyImageType")
            .map(String::as_str)
            .unwrap_or(&self.variant);
        let tag = if image_type.is_empty() {
            self.tag.clone()
        } else {
            let base = ["-distroless", "-debug"]
                .iter()
                .find_map(|suffix| self.tag.strip_suffix(suffix))
                .unwrap_or(&self.tag);
            if image_type == "default" {
                base.to_string()
            } else {
                format!("{base}-{image_type}")
            }
        };
        format!("{}/{name}:{tag}", self.hub)
    }
}

impl ProxyImages {
    /// The `istio-proxy` and `istio-init` images for a pod.
    fn for_pod(&self, annotations: &BTreeMap<String, String>) -> (String, String) {
        match self {
            ProxyImages::Values(values) => (
                values.render(&values.proxy, annotations),
                values.render(&values.proxy_init, annotations),
            ),
            ProxyImages::Fixed(image) => {
                let image = annotations
                    .get("sidecar.istio.io/proxyImage")
                    .filter(|a| a.contains('/'))
                    .unwrap_or(image)
                    .clone();
                (image.clone(), image)
            }
        }
    }
}

/// The `istio-proxy` image a revision's istiod renders into the gateway
/// Deployments it provisions (`kube-gateway.yaml`, `waypoint.yaml`): what its
/// injector would give a pod with the Gateway's `annotations`
/// (`inject.ProxyImage` over the same `values`), from the injector ConfigMap
/// `istio-sidecar-injector[-<rev>]`, else derived from istiod's image.
pub fn revision_proxy_image(
    store: &Store,
    revision: &str,
    istiod_image: &str,
    annotations: &BTreeMap<String, String>,
) -> String {
    let configmap_name = if revision == "default" {
        "istio-sidecar-injector".to_string()
    } else {
        format!("istio-sidecar-injector-{revision}")
    };
    store
        .get(kinds::configmaps(), ISTIO_NAMESPACE, &configmap_name)
        .as_ref()
        .and_then(|cm| cm.pointer("/data/values"))
        .and_then(Value::as_str)
        .and_then(ImageValues::parse)
        .map(ProxyImages::Values)
        .unwrap_or_else(|| ProxyImages::Fixed(proxy_image_from_istiod(istiod_image)))
        .for_pod(annotations)
        .0
}

/// `reg:5000/istio/pilot:1.22.3-distroless` → `reg:5000/istio/proxyv2:1.22.3-distroless`:
/// the istiod image's registry and tag with the proxy's image name. The tag is
/// what follows `:` in the last path segment, so a registry port is kept in
/// the hub. A digest-only image has no tag to reuse and gives `latest`.
pub fn proxy_image_from_istiod(istiod_image: &str) -> String {
    let without_digest = istiod_image.split('@').next().unwrap_or(istiod_image);
    let (hub, last) = match without_digest.rsplit_once('/') {
        Some((hub, last)) => (Some(hub), last),
        None => (None, without_digest),
    };
    let tag = last.split_once(':').map_or("latest", |(_, tag)| tag);
    match hub {
        Some(hub) => format!("{hub}/proxyv2:{tag}"),
        None => format!("proxyv2:{tag}"),
    }
}

impl Injector {
    /// Istio's injector proper: its own checks, then the template.
    fn inject(&self, pod: &mut Value) {
        // The sim's one liberty: a pod that already carries a proxy (loaded
        // "injected long ago", or injected by an earlier webhook) is left as
        // it is. istiod would re-render it; here the first answer stands.
        if pod
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(STATUS_ANNOTATION))
            .is_some()
        {
            return;
        }
        if !self.policy.injection_required(pod) {
            return;
        }
        let annotations = string_map(pod.pointer("/metadata/annotations"));
        let gateway = annotations
            .get("inject.istio.io/templates")
            .is_some_and(|t| t.split(',').any(|t| t.trim() == "gateway"));
        let native = !gateway
            && (self.native_sidecars
                || annotations
                    .get("sidecar.istio.io/nativeSidecar")
                    .map(String::as_str)
                    == Some("true"));
        let (image, init_image) = self.images.for_pod(&annotations);
        let workload = Workload::of(pod);
        let app_containers: Vec<String> = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str))
                    .filter(|n| *n != "istio-proxy")
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();

        let mut proxy = self.proxy_container(&image, gateway, &workload, &app_containers);
        if native {
            proxy["restartPolicy"] = json!("Always");
        }
        let spec = object_field(pod, "spec");
        // A container the pod already names `istio-proxy` customises the
        // template's (as Istio merges them): its fields win, except the
        // placeholder image `auto`.
        let user_proxy = take_container(spec, "containers", "istio-proxy")
            .or_else(|| take_container(spec, "initContainers", "istio-proxy"));
        if let Some(user) = user_proxy {
            proxy = merge_container(proxy, user);
        }
        if gateway {
            array_field(spec, "containers").push(proxy);
        } else {
            let init = self.init_container(&init_image);
            let inits = array_field(spec, "initContainers");
            inits.retain(|c| c.get("name").and_then(Value::as_str) != Some("istio-init"));
            // istio-init runs first so every later init container's traffic
            // is already redirected; a native proxy starts right after it.
            inits.insert(0, init);
            if native {
                inits.insert(1, proxy);
            } else {
                array_field(spec, "containers").push(proxy);
            }
        }
        let volumes = array_field(spec, "volumes");
        for volume in injected_volumes() {
            let name = volume.get("name").cloned();
            if !volumes.iter().any(|v| v.get("name") == name.as_ref()) {
                volumes.push(volume);
            }
        }

        let labels = string_map(pod.pointer("/metadata/labels"));
        let canonical_name = [
            "service.istio.io/canonical-name",
            "app.kubernetes.io/name",
            "app",
        ]
        .iter()
        .find_map(|k| labels.get(*k).cloned())
        .unwrap_or_else(|| workload.name.clone());
        let canonical_revision = [
            "service.istio.io/canonical-revision",
            "app.kubernetes.io/version",
            "version",
        ]
        .iter()
        .find_map(|k| labels.get(*k).cloned())
        .unwrap_or_else(|| "latest".to_string());
        let meta = object_field(pod, "metadata");
        let labels = object_field_map(meta, "labels");
        labels.insert(
            "service.istio.io/canonical-name".into(),
            json!(canonical_name),
        );
        labels.insert(
            "service.istio.io/canonical-revision".into(),
            json!(canonical_revision),
        );
        // As Istio's templates do, a pod's own `istio.io/rev` label (which may
        // name a tag) is kept; only unlabelled pods get the revision.
        labels
            .entry("istio.io/rev")
            .or_insert_with(|| json!(self.revision));
        if !gateway {
            labels.insert("security.istio.io/tlsMode".into(), json!("istio"));
        }
        let annotations = object_field_map(meta, "annotations");
        // The sidecar template points kubectl at the first app container; the
        // gateway template only when there is exactly one.
        if !app_containers.is_empty() && (!gateway || app_containers.len() == 1) {
            for key in [
                "kubectl.kubernetes.io/default-container",
                "kubectl.kubernetes.io/default-logs-container",
            ] {
                annotations
                    .entry(key)
                    .or_insert_with(|| json!(app_containers[0]));
            }
        }
        annotations.insert(
            STATUS_ANNOTATION.into(),
            json!(self.status_annotation(gateway, native)),
        );
    }

    /// `sidecar.istio.io/status`, with its keys in Istio's order.
    fn status_annotation(&self, gateway: bool, native: bool) -> String {
        let (init_containers, containers) = match (gateway, native) {
            (true, _) => ("null", r#"["istio-proxy"]"#),
            (false, true) => (r#"["istio-init","istio-proxy"]"#, "null"),
            (false, false) => (r#"["istio-init"]"#, r#"["istio-proxy"]"#),
        };
        let volumes = serde_json::to_string(&INJECTED_VOLUMES).unwrap_or_default();
        let revision = serde_json::to_string(&self.revision).unwrap_or_default();
        format!(
            r#"{{"initContainers":{init_containers},"containers":{containers},"volumes":{volumes},"imagePullSecrets":null,"revision":{revision}}}"#
        )
    }

    fn proxy_container(
        &self,
        image: &str,
        gateway: bool,
        workload: &Workload,
        app_containers: &[String],
    ) -> Value {
        // A trimmed version of Istio's template: the fields someone reading
        // the pod looks at (image, args, ports, the env naming the CA and the
        // workload, probe, user, mounts). Resource requests and most of the
        // env are left out: every field is kept for every pod, and a
        // 50,000-pod cluster has to fit in memory.
        let field_env = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
        let env = vec![
            json!({"name": "CA_ADDR", "value": format!("{}.{ISTIO_NAMESPACE}.svc:15012", self.service)}),
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
            json!({"name": "ISTIO_META_APP_CONTAINERS", "value": app_containers.join(",")}),
            json!({"name": "ISTIO_META_WORKLOAD_NAME", "value": workload.name}),
            json!({"name": "ISTIO_META_OWNER", "value": workload.owner}),
        ];
        json!({
            "name": "istio-proxy",
            "image": image,
            "args": [
                "proxy",
                if gateway { "router" } else { "sidecar" },
                "--domain",
                "$(POD_NAMESPACE).svc.cluster.local",
                "--proxyLogLevel=warning",
                "--proxyComponentLogLevel=misc:error",
                "--log_output_level=default:info",
            ],
            "ports": [{"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"}],
            "env": env,
            "readinessProbe": {
                "httpGet": {"path": "/healthz/ready", "port": 15021},
                "periodSeconds": 15,
                "timeoutSeconds": 3,
                "failureThreshold": 4,
            },
            "securityContext": {"runAsGroup": 1337, "runAsNonRoot": true, "runAsUser": 1337},
            "volumeMounts": [
                {"mountPath": "/var/run/secrets/istio", "name": "istiod-ca-cert"},
                {"mountPath": "/var/lib/istio/data", "name": "istio-data"},
                {"mountPath": "/etc/istio/proxy", "name": "istio-envoy"},
                {"mountPath": "/var/run/secrets/tokens", "name": "istio-token"},
                {"mountPath": "/etc/istio/pod", "name": "istio-podinfo"},
            ],
        })
    }

    fn init_container(&self, image: &str) -> Value {
        json!({
            "name": "istio-init",
            "image": image,
            "args": [
                "istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
                "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020",
                "--log_output_level=default:info",
            ],
            "securityContext": {
                "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
                "runAsNonRoot": false,
                "runAsUser": 0,
            },
        })
    }
}

/// istiod's own decision once a webhook called it, with the `config` of its
/// injector ConfigMap: `injectRequired` in Istio's
/// `pkg/kube/inject/inject.go`. Pods it declines are admitted unchanged.
/// Nothing here looks at ambient mode: the webhooks and istiod do not, so a
/// namespace labelled both for sidecars and for ambient gets sidecars.
#[derive(Debug, Clone, PartialEq)]
struct InjectionPolicy {
    /// `policy`: `enabled` or `disabled`; anything else injects nothing.
    policy: String,
    /// `neverInjectSelector` entries (label selectors, OR'ed).
    never_inject: Vec<Value>,
    /// `alwaysInjectSelector` entries.
    always_inject: Vec<Value>,
}

impl InjectionPolicy {
    /// The charts' config: `policy: enabled`, no selectors. Used when the
    /// revision has no injector ConfigMap, or one without a readable `config`.
    fn standard() -> Self {
        InjectionPolicy {
            policy: "enabled".to_string(),
            never_inject: Vec::new(),
            always_inject: Vec::new(),
        }
    }

    /// Reads the ConfigMap's `config` (YAML; its templates are ignored).
    fn from_config(text: &str) -> Option<Self> {
        let config: Value = serde_yaml::from_str(text).ok()?;
        let config = config.as_object()?;
        let list = |key: &str| -> Vec<Value> {
            config
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        Some(InjectionPolicy {
            policy: config
                .get("policy")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            never_inject: list("neverInjectSelector"),
            always_inject: list("alwaysInjectSelector"),
        })
    }

    fn injection_required(&self, pod: &Value) -> bool {
        // Host networking: iptables rules would land in the node's network
        // namespace.
        if pod.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true) {
            return false;
        }
        let namespace = pod
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if IGNORED_NAMESPACES.contains(&namespace) {
            return false;
        }
        let labels = labels_of(pod);
        let annotations = string_map(pod.pointer("/metadata/annotations"));
        // The label is the newer API and wins over the annotation.
        let asked = labels
            .get("sidecar.istio.io/inject")
            .or_else(|| annotations.get("sidecar.istio.io/inject"));
        let mut explicit = match asked.map(String::as_str) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            // Any other value: istiod warns and uses its default.
            _ => None,
        };
        if explicit.is_none() && self.never_inject.iter().any(|s| selects(s, &labels)) {
            explicit = Some(false);
        }
        if explicit.is_none() && self.always_inject.iter().any(|s| selects(s, &labels)) {
            explicit = Some(true);
        }
        match self.policy.as_str() {
            "enabled" => explicit.unwrap_or(true),
            "disabled" => explicit.unwrap_or(false),
            _ => false,
        }
    }
}

/// Whether one never/always selector of the injector config matches: an
/// empty selector, or one that does not convert, is skipped (never matches).
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let non_empty = |key: &str| {
        selector.get(key).is_some_and(|v| match v {
            Value::Object(m) => !m.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => false,
        })
    };
    if !non_empty("matchLabels") && !non_empty("matchExpressions") {
        return false;
    }
    crate::selectors::label_selector_matches(selector, labels).unwrap_or(false)
}

/// The workload a pod belongs to, as Istio names it in proxy metadata.
struct Workload {
    name: String,
    owner: String,
}

impl Workload {
    fn of(pod: &Value) -> Self {
        let namespace = pod
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let pod_name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let owner = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|owners| {
                owners
                    .iter()
                    .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
                    .or_else(|| owners.first())
            });
        let Some(owner) = owner else {
            return Workload {
                name: pod_name.to_string(),
                owner: format!("kubernetes://apis/v1/namespaces/{namespace}/pods/{pod_name}"),
            };
        };
        let kind = owner.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = owner.get("name").and_then(Value::as_str).unwrap_or("");
        let hash = pod
            .pointer("/metadata/labels/pod-template-hash")
            .and_then(Value::as_str);
        // A ReplicaSet named `<deployment>-<pod-template-hash>` stands for its
        // Deployment, as Istio reports it.
        let (api_version, kind, name) = match (kind, hash) {
            ("ReplicaSet", Some(hash)) if name.ends_with(&format!("-{hash}")) => (
                "apps/v1",
                "Deployment",
                &name[..name.len() - hash.len() - 1],
            ),
            _ => (
                owner
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("v1"),
                kind,
                name,
            ),
        };
        Workload {
            name: name.to_string(),
            owner: format!(
                "kubernetes://apis/{api_version}/namespaces/{namespace}/{}s/{name}",
                kind.to_lowercase()
            ),
        }
    }
}

fn injected_volumes() -> Vec<Value> {
    vec![
        json!({"name": "istio-envoy", "emptyDir": {"medium": "Memory"}}),
        json!({"name": "istio-data", "emptyDir": {}}),
        json!({"name": "istio-podinfo", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        ]}}),
        json!({"name": "istio-token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "istio-token", "expirationSeconds": 43200, "audience": "istio-ca"}},
        ]}}),
        json!({"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}}),
    ]
}

/// Removes and returns the container named `name` from `spec[field]`.
fn take_container(spec: &mut Map<String, Value>, field: &str, name: &str) -> Option<Value> {
    let list = spec.get_mut(field)?.as_array_mut()?;
    let at = list
        .iter()
        .position(|c| c.get("name").and_then(Value::as_str) == Some(name))?;
    Some(list.remove(at))
}

/// The template's container with the user's fields laid over it.
fn merge_container(mut template: Value, user: Value) -> Value {
    let Some(user) = user.as_object() else {
        return template;
    };
    for (key, value) in user {
        if key == "image" && (value.as_str() == Some("auto") || value.is_null()) {
            continue;
        }
        template[key] = value.clone();
    }
    template
}

/// `obj[field]` as a map, created when missing or not an object.
fn object_field<'a>(obj: &'a mut Value, field: &str) -> &'a mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let map = obj.as_object_mut().expect("made an object above");
    object_field_map(map, field)
}

fn object_field_map<'a>(
    map: &'a mut Map<String, Value>,
    field: &str,
) -> &'a mut Map<String, Value> {
    let entry = map.entry(field).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("made an object above")
}

fn array_field<'a>(map: &'a mut Map<String, Value>, field: &str) -> &'a mut Vec<Value> {
    let entry = map.entry(field).or_insert_with(|| json!([]));
    if !entry.is_array() {
        *entry = json!([]);
    }
    entry.as_array_mut().expect("made an array above")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup_kind;

    /// A bare store with namespaces, Istio revisions and a Ready pod behind
    /// each istiod, as the controllers would leave it.
    struct Cluster {
        store: Store,
    }

    impl Cluster {
        fn new() -> Self {
            let mut cluster = Cluster {
                store: Store::default(),
            };
            cluster.namespace(ISTIO_NAMESPACE, &[]);
            cluster
        }

        fn put(&mut self, obj: Value) {
            let api_version = obj["apiVersion"].as_str().unwrap_or("");
            let kind = obj["kind"].as_str().unwrap_or("");
            let resource = lookup_kind(api_version, kind).expect("a builtin kind");
            self.store.put(resource, obj);
        }

        fn namespace(&mut self, name: &str, labels: &[(&str, &str)]) -> &mut Self {
            let labels: Map<String, Value> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            self.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}));
            self
        }

        /// Installs a revision; `ready` says whether its istiod pod is Ready.
        fn revision(
            &mut self,
            rev: Option<&str>,
            version: &str,
            opts: &RevisionOptions,
            ready: bool,
        ) -> &mut Self {
            for obj in istio_revision_objects(rev, version, opts) {
                if obj["kind"] == "Deployment" {
                    self.istiod_pod(&obj, ready);
                }
                self.put(obj);
            }
            self
        }

        fn istiod_pod(&mut self, deployment: &Value, ready: bool) {
            let name = deployment["metadata"]["name"].as_str().unwrap_or("istiod");
            let status = if ready { "True" } else { "False" };
            self.put(json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": format!("{name}-7d4f8b9c6-x2x4z"),
                    "namespace": ISTIO_NAMESPACE,
                    "labels": deployment["spec"]["template"]["metadata"]["labels"],
                    "creationTimestamp": "2024-06-01T10:00:00Z",
                },
                "spec": deployment["spec"]["template"]["spec"],
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]},
            }));
        }

        fn tag(&mut self, tag: &str, rev: Option<&str>) -> &mut Self {
            for obj in revision_tag_objects(tag, rev) {
                self.put(obj);
            }
            self
        }

        fn admit(&self, pod: Value) -> ApiResult<Value> {
            let mut pod = pod;
            admit_pod(&self.store, &mut pod, false)?;
            Ok(pod)
        }
    }

    fn new_pod(namespace: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Value {
        let labels: Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let annotations: Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": namespace, "labels": labels, "annotations": annotations},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}]},
        })
    }

    fn find_proxy<'a>(pod: &'a Value, list: &str) -> Option<&'a Value> {
        pod["spec"][list]
            .as_array()?
            .iter()
            .find(|c| c["name"] == "istio-proxy")
    }

    fn proxy_image(pod: &Value) -> Option<&str> {
        find_proxy(pod, "containers")
            .or_else(|| find_proxy(pod, "initContainers"))
            .and_then(|c| c["image"].as_str())
    }

    fn injected_revision(pod: &Value) -> Option<String> {
        let status = pod["metadata"]["annotations"][STATUS_ANNOTATION].as_str()?;
        let status: Value = serde_json::from_str(status).ok()?;
        status["revision"].as_str().map(str::to_string)
    }

    /// The canary layout: a default install on 1.21.2 and a 1-22-3 revision.
    fn default_and_canary() -> Cluster {
        let mut cluster = Cluster::new();
        let opts = RevisionOptions::default();
        cluster.revision(None, "1.21.2", &opts, true).revision(
            Some("1-22-3"),
            "1.22.3",
            &opts,
            true,
        );
        cluster
    }

    #[test]
    fn namespace_labelled_istio_injection_enabled_gets_the_default_revision() {
        let mut cluster = default_and_canary();
        cluster.namespace("shop", &[("istio-injection", "enabled")]);
        let pod = cluster
            .admit(new_pod("shop", &[("app", "web")], &[]))
            .unwrap();
        assert_eq!(proxy_image(&pod), Some("docker.io/istio/proxyv2:1.21.2"));
        assert_eq!(injected_revision(&pod).as_deref(), Some("default"));
        assert_eq!(pod["metadata"]["labels"]["istio.io/rev"], "default");
    }

    #[test]
    fn namespace_labelled_with_a_revision_gets_that_revision() {
        let mut cluster = default_and_canary();
        cluster.namespace("pay", &[("istio.io/rev", "1-22-3")]);
        let pod = cluster.admit(new_pod("pay", &[], &[])).unwrap();
        assert_eq!(proxy_image(&pod), Some("docker.io/istio/proxyv2:1.22.3"));
        assert_eq!(injected_revision(&pod).as_deref(), Some("1-22-3"));
        let env = find_proxy(&pod, "containers").unwrap()["env"]
            .as_array()
            .unwrap()
            .clone();
        assert!(env.contains(
            &json!({"name": "CA_ADDR", "value": "istiod-1-22-3.istio-system.svc:15012"})
        ));
    }

    #[test]
    fn when_both_namespace_labels_are_set_the_legacy_label_wins() {
        let mut cluster = default_and_canary();
        cluster.namespace(
            "legacy",
            &[("istio-injection", "enabled"), ("istio.io/rev", "1-22-3")],
        );
        let pod = cluster.admit(new_pod("legacy", &[], &[])).unwrap();
        assert_eq!(injected_revision(&pod).as_deref(), Some("default"));
        assert_eq!(proxy_image(&pod), Some("docker.io/istio/proxyv2:1.21.2"));
    }

    #[test]
    fn pod_revision_label_in_an_unlabelled_namespace_selects_that_revision() {
        let mut cluster = default_and_canary();
        cluster.namespace("plain", &[]);
        let pod = cluster
            .admit(new_pod("plain", &[("istio.io/rev", "1-22-3")], &[]))
            .unwrap();
        assert_eq!(injected_revision(&pod).as_deref(), Some("1-22-3"));
        assert_eq!(proxy_image(&pod), Some("docker.io/istio/proxyv2:1.22.3"));
    }

    #[test]
    fn pod_opted_out_with_inject_false_is_not_injected() {
        let mut cluster = default_and_canary();
        cluster.namespace("shop", &[("istio-injection", "enabled")]);
        let original = new_pod("shop", &[("sidecar.istio.io/inject", "false")], &[]);
        let admitted = cluster.admit(original.clone()).unwrap();
        assert_eq!(admitted, original);
    }

    #[test]
    fn pod_opted_in_with_inject_true_in_an_unlabelled_namespace_gets_the_default_revision() {
        let mut cluster = default_and_canary();
        cluster.namespace("plain", &[]);
        let pod = cluster
            .admit(new_pod(
                "plain",
                &[("sidecar.istio.io/inject", "true")],
                &[],
            ))
            .unwrap();
        assert_eq!(injected_revision(&pod).as_deref(), Some("default"));
        let untouched = cluster.admit(new_pod("plain", &[], &[])).unwrap();
        assert_eq!(proxy_image(&untouched), None);
    }

    #[test]
    fn namespace_using_a_revision_tag_gets_the_tagged_revision() {
        let mut cluster = default_and_canary();
        cluster
            .tag("prod-canary", Some("1-22-3"))
            .namespace("cart", &[("istio.io/rev", "prod-canary")]);
        let pod = cluster.admit(new_pod("cart", &[], &[])).unwrap();
        // The status names the revision that injected, not the tag.
        assert_eq!(injected_revision(&pod).as_deref(), Some("1-22-3"));
        assert_eq!(proxy_image(&pod), Some("docker.io/istio/proxyv2:1.22.3"));
        // A pod-level tag label works in an unlabelled namespace too.
        cluster.namespace("plain", &[]);
        let pod = cluster
            .admit(new_pod("plain", &[("istio.io/rev", "prod-canary")], &[]))
            .unwrap();
        assert_eq!(injected_revision(&pod).as_deref(), Some("1-22-3"));
        assert_eq!(pod["metadata"]["labels"]["istio.io/rev"], "prod-canary");
    }

    #[test]
    fn moving_the_default_tag_moves_istio_injection_enabled_namespaces() {
        let mut cluster = default_and_canary();
        cluster
            .namespace("shop", &[("istio-injection", "enabled")])
            .namespace("plain", &[]);
        // `istioctl tag set default --revision 1-22-3`: the tag appears and the
        // default install's namespace./object. webhooks stop matching.
        cluster.tag("default", Some("1-22-3"));
        cluster.put(injector_webhook_configuration(None, true));
        let pod = cluster.admit(new_pod("shop", &[], &[])).unwrap();
        assert_eq!(injected_revision(&pod).as_deref(), Some("1-22-3"));
        let opted_in = cluster
            .admit(new_pod(
                "plain",
                &[("sidecar.istio.io/inject", "true")],
                &[],
            ))
            .unwrap();
        assert_eq!(injected_revision(&opted_in).as_deref(), Some("1-22-3"));
    }

    #[test]
    fn label_naming_a_missing_revision_leaves_the_pod_without_a_proxy() {
        let mut cluster = default_and_canary();
        cluster
            .namespace("typo", &[("istio.io/rev", "1-22-4")])
            .namespace("plain", &[]);
        let pod = cluster.admit(new_pod("typo", &[], &[])).unwrap();
        assert_eq!(proxy_image(&pod), None);
        let pod = cluster
            .admit(new_pod("plain", &[("istio.io/rev", "1-22-4")], &[]))
            .unwrap();
        assert_eq!(proxy_image(&pod), None);
    }

    #[test]
    fn unready_istiod_refuses_pod_creation_under_the_fail_policy() {
        let mut cluster = Cluster::new();
        cluster
            .revision(Some("1-22-3"), "1.22.3", &RevisionOptions::default(), false)
            .namespace("pay", &[("istio.io/rev", "1-22-3")]);
        let err = cluster.admit(new_pod("pay", &[], &[])).unwrap_err();
        assert_eq!(err.code, 500);
        assert_eq!(
            err.message,
            "Internal error occurred: failed calling webhook \"rev.namespace.sidecar-injector.istio.io\": failed to call webhook: Post \"https://istiod-1-22-3.istio-system.svc:443/inject?timeout=10s\": no endpoints available for service \"istiod-1-22-3\""
        );
    }

    #[test]
    fn unready_istiod_lets_pods_through_uninjected_under_the_ignore_policy() {
        let mut cluster = Cluster::new();
        cluster
            .revision(Some("1-22-3"), "1.22.3", &RevisionOptions::default(), false)
            .namespace("pay", &[("istio.io/rev", "1-22-3")]);
        let mut mwc = injector_webhook_configuration(Some("1-22-3"), false);
        for webhook in mwc["webhooks"].as_array_mut().unwrap() {
            webhook["failurePolicy"] = json!("Ignore");
        }
        cluster.put(mwc);
        let pod = cluster.admit(new_pod("pay", &[], &[])).unwrap();
        assert_eq!(proxy_image(&pod), None);
    }

    #[test]
    fn istiod_with_native_sidecars_puts_the_proxy_in_init_containers() {
        let mut cluster = Cluster::new();
        let opts = RevisionOptions {
            native_sidecars: true,
            ..RevisionOptions::default()
        };
        cluster
            .revision(Some("1-22-3"), "1.22.3", &opts, true)
            .namespace("pay", &[("istio.io/rev", "1-22-3")]);
        let pod = cluster.admit(new_pod("pay", &[], &[])).unwrap();
        assert!(find_proxy(&pod, "containers").is_none());
        let inits: Vec<&str> = pod["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(inits, ["istio-init", "istio-proxy"]);
        assert_eq!(
            find_proxy(&pod, "initContainers").unwrap()["restartPolicy"],
            "Always"
        );
        let status: Value = serde_json::from_str(
            pod["metadata"]["annotations"][STATUS_ANNOTATION]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            status["initContainers"],
            json!(["istio-init", "istio-proxy"])
        );
        assert_eq!(status["containers"], Value::Null);
    }

    #[test]
    fn native_sidecar_annotation_puts_the_proxy_in_init_containers() {
        let mut cluster = default_and_canary();
        cluster.namespace("shop", &[("istio-injection", "enabled")]);
        let pod = cluster
            .admit(new_pod(
                "shop",
                &[],
                &[("sidecar.istio.io/nativeSidecar", "true")],
            ))
            .unwrap();
        assert!(find_proxy(&pod, "containers").is_none());
        assert_eq!(
            find_proxy(&pod, "initContainers").unwrap()["restartPolicy"],
            "Always"
        );
        assert_eq!(proxy_image(&pod), Some("docker.io/istio/proxyv2:1.21.2"));
    }

    #[test]
    fn gateway_template_fills_in_the_auto_image_without_adding_containers() {
        let mut cluster = default_and_canary();
        cluster.namespace("istio-gateways", &[]);
        let mut gateway = new_pod(
            "istio-gateways",
            &[
                ("istio", "ingressgateway"),
                ("istio.io/rev", "1-22-3"),
                ("version", "1-22-3"),
            ],
            &[("inject.istio.io/templates", "gateway")],
        );
        gateway["spec"]["containers"] =
            json!([{"name": "istio-proxy", "image": "auto", "ports": [{"containerPort": 8080}]}]);
        let pod = cluster.admit(gateway).unwrap();
        let containers = pod["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["image"], "docker.io/istio/proxyv2:1.22.3");
        // The pod's own ports win over the template's.
        assert_eq!(containers[0]["ports"], json!([{"containerPort": 8080}]));
        assert_eq!(containers[0]["args"][1], "router");
        assert!(pod["spec"]["initContainers"].is_null());
        assert_eq!(injected_revision(&pod).as_deref(), Some("1-22-3"));
        assert!(pod["metadata"]["labels"]["security.istio.io/tlsMode"].is_null());
    }

    #[test]
    fn ambient_namespace_pods_are_not_injected() {
        let mut cluster = default_and_canary();
        cluster.namespace("ambient-apps", &[("istio.io/dataplane-mode", "ambient")]);
        let original = new_pod("ambient-apps", &[], &[]);
        assert_eq!(cluster.admit(original.clone()).unwrap(), original);
    }

    #[test]
    fn an_ambient_namespace_labelled_for_sidecars_too_gets_sidecars() {
        // Neither the charts' selectors nor istiod look at the dataplane
        // mode; the CNI then leaves pods with a sidecar alone.
        let mut cluster = default_and_canary();
        cluster.namespace(
            "mixed",
            &[
                ("istio.io/dataplane-mode", "ambient"),
                ("istio-injection", "enabled"),
            ],
        );
        let pod = cluster.admit(new_pod("mixed", &[], &[])).unwrap();
        assert_eq!(injected_revision(&pod).as_deref(), Some("default"));
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct CaseTable {
        policy: Vec<PolicyCase>,
        control_plane: TablePlane,
        admission: Vec<AdmissionCase>,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PolicyCase {
        name: String,
        namespace: Option<String>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
        #[serde(default)]
        host_network: bool,
        config: Option<String>,
        inject: bool,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct TablePlane {
        default_revision: TableRevision,
        revisions: Vec<TableRevision>,
        tags: Vec<TableTag>,
    }

    #[derive(serde::Deserialize)]
    struct TableRevision {
        revision: Option<String>,
        version: String,
    }

    #[derive(serde::Deserialize)]
    struct TableTag {
        tag: String,
        revision: String,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct AdmissionCase {
        name: String,
        namespace: Option<String>,
        #[serde(default)]
        namespace_labels: BTreeMap<String, String>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
        #[serde(default)]
        host_network: bool,
        revision: Option<String>,
    }

    fn case_table() -> CaseTable {
        serde_yaml::from_str(include_str!("../../testdata/injection-policy-cases.yaml"))
            .expect("the case table parses")
    }

    fn pairs(map: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
        map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn every_policy_case_of_the_shared_table_is_decided_as_istiod_decides_it() {
        let table = case_table();
        assert!(table.policy.len() > 20);
        for case in &table.policy {
            // The config goes through the injector ConfigMap of the only
            // revision, so the case runs the whole admission path.
            let mut cluster = Cluster::new();
            cluster.revision(Some("1-22-3"), "1.22.3", &RevisionOptions::default(), true);
            if let Some(config) = &case.config {
                let mut cm = (*cluster
                    .store
                    .get(
                        kinds::configmaps(),
                        ISTIO_NAMESPACE,
                        "istio-sidecar-injector-1-22-3",
                    )
                    .unwrap())
                .clone();
                cm["data"]["config"] = json!(config);
                cluster.put(cm);
            }
            let namespace = case.namespace.as_deref().unwrap_or("shop");
            cluster.namespace(namespace, &[("istio.io/rev", "1-22-3")]);
            let mut pod = new_pod(namespace, &pairs(&case.labels), &pairs(&case.annotations));
            if case.host_network {
                pod["spec"]["hostNetwork"] = json!(true);
            }
            let admitted = cluster.admit(pod).unwrap();
            assert_eq!(
                injected_revision(&admitted).is_some(),
                case.inject,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn every_admission_case_of_the_shared_table_gets_the_revision_istio_gives_it() {
        let table = case_table();
        let opts = RevisionOptions::default();
        let mut cluster = Cluster::new();
        cluster.revision(
            None,
            &table.control_plane.default_revision.version,
            &opts,
            true,
        );
        for r in &table.control_plane.revisions {
            cluster.revision(r.revision.as_deref(), &r.version, &opts, true);
        }
        for t in &table.control_plane.tags {
            cluster.tag(&t.tag, Some(&t.revision));
        }
        assert!(table.admission.len() > 15);
        for (i, case) in table.admission.iter().enumerate() {
            let namespace = case.namespace.clone().unwrap_or_else(|| format!("ns-{i}"));
            cluster.namespace(&namespace, &pairs(&case.namespace_labels));
            let mut pod = new_pod(&namespace, &pairs(&case.labels), &pairs(&case.annotations));
            if case.host_network {
                pod["spec"]["hostNetwork"] = json!(true);
            }
            let admitted = cluster.admit(pod).unwrap();
            assert_eq!(injected_revision(&admitted), case.revision, "{}", case.name);
        }
    }

    #[test]
    fn enable_namespaces_by_default_injects_unlabelled_namespaces_but_not_system_ones() {
        let mut cluster = Cluster::new();
        let opts = RevisionOptions {
            enable_namespaces_by_default: true,
            ..RevisionOptions::default()
        };
        cluster
            .revision(None, "1.22.3", &opts, true)
            .namespace("anything", &[])
            .namespace("off", &[("istio-injection", "disabled")])
            .namespace("kube-public", &[]);
        let injected = |cluster: &Cluster, ns: &str, labels: &[(&str, &str)]| {
            injected_revision(&cluster.admit(new_pod(ns, labels, &[])).unwrap())
        };
        assert_eq!(
            injected(&cluster, "anything", &[]).as_deref(),
            Some("default")
        );
        assert_eq!(injected(&cluster, "off", &[]), None);
        assert_eq!(injected(&cluster, "kube-public", &[]), None);
        assert_eq!(
            injected(
                &cluster,
                "anything",
                &[("sidecar.istio.io/inject", "false")]
            ),
            None
        );
    }

    #[test]
    fn the_injector_config_policy_and_selectors_come_from_the_chart_options() {
        let mut cluster = Cluster::new();
        let opts = RevisionOptions {
            auto_inject: "disabled".into(),
            always_inject_selector: vec![json!({"matchLabels": {"team": "payments"}})],
            ..RevisionOptions::default()
        };
        cluster
            .revision(Some("1-22-3"), "1.22.3", &opts, true)
            .namespace("pay", &[("istio.io/rev", "1-22-3")]);
        let injected = |labels: &[(&str, &str)]| {
            injected_revision(&cluster.admit(new_pod("pay", labels, &[])).unwrap())
        };
        assert_eq!(injected(&[]), None, "policy disabled");
        assert_eq!(injected(&[("team", "payments")]).as_deref(), Some("1-22-3"));
        assert_eq!(
            injected(&[("sidecar.istio.io/inject", "true")]).as_deref(),
            Some("1-22-3")
        );
    }

    #[test]
    fn already_injected_pods_are_left_untouched() {
        let mut cluster = default_and_canary();
        cluster.namespace("pay", &[("istio.io/rev", "1-22-3")]);
        let mut old = new_pod(
            "pay",
            &[("istio.io/rev", "1-20-1")],
            &[(
                STATUS_ANNOTATION,
                r#"{"containers":["istio-proxy"],"revision":"1-20-1"}"#,
            )],
        );
        old["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.20.1"}));
        assert_eq!(cluster.admit(old.clone()).unwrap(), old);
    }

    #[test]
    fn second_matching_webhook_is_a_no_op() {
        let mut cluster = default_and_canary();
        // A tag `default` next to a default install that was not deactivated:
        // both match `istio-injection=enabled`, the first (by name) injects.
        cluster
            .tag("default", Some("1-22-3"))
            .namespace("shop", &[("istio-injection", "enabled")]);
        let pod = cluster.admit(new_pod("shop", &[], &[])).unwrap();
        assert_eq!(injected_revision(&pod).as_deref(), Some("1-22-3"));
        let proxies = pod["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"] == "istio-proxy")
            .count();
        assert_eq!(proxies, 1);
        assert_eq!(pod["spec"]["initContainers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn injected_pod_carries_the_status_annotation_labels_and_volumes() {
        let mut cluster = default_and_canary();
        cluster.namespace("pay", &[("istio.io/rev", "1-22-3")]);
        let mut original = new_pod(
            "pay",
            &[
                ("app", "ledger"),
                ("version", "v2"),
                ("pod-template-hash", "5d8f7c9b6"),
            ],
            &[],
        );
        original["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ledger-5d8f7c9b6", "controller": true}]);
        let pod = cluster.admit(original.clone()).unwrap();
        assert_eq!(
            pod["metadata"]["annotations"][STATUS_ANNOTATION],
            r#"{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],"imagePullSecrets":null,"revision":"1-22-3"}"#
        );
        let labels = &pod["metadata"]["labels"];
        assert_eq!(labels["security.istio.io/tlsMode"], "istio");
        assert_eq!(labels["service.istio.io/canonical-name"], "ledger");
        assert_eq!(labels["service.istio.io/canonical-revision"], "v2");
        assert_eq!(labels["istio.io/rev"], "1-22-3");
        let volumes: Vec<&str> = pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(volumes, INJECTED_VOLUMES);
        let proxy = find_proxy(&pod, "containers").unwrap();
        assert_eq!(
            proxy["ports"][0],
            json!({"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"})
        );
        let env = proxy["env"].as_array().unwrap();
        assert!(env.contains(&json!({"name": "ISTIO_META_WORKLOAD_NAME", "value": "ledger"})));
        assert!(env.contains(&json!({"name": "ISTIO_META_OWNER", "value": "kubernetes://apis/apps/v1/namespaces/pay/deployments/ledger"})));
        assert_eq!(
            pod["spec"]["initContainers"][0]["image"],
            "docker.io/istio/proxyv2:1.22.3"
        );
        // The app container is untouched and stays first.
        assert_eq!(
            pod["spec"]["containers"][0],
            original["spec"]["containers"][0]
        );
    }

    #[test]
    fn proxy_image_comes_from_the_injector_configmap_hub_and_tag() {
        let mut cluster = Cluster::new();
        let opts = RevisionOptions {
            hub: "gcr.io/istio-release".into(),
            variant: Some("distroless".into()),
            ..RevisionOptions::default()
        };
        cluster
            .revision(Some("1-22-3"), "1.22.3", &opts, true)
            .namespace("pay", &[("istio.io/rev", "1-22-3")]);
        // The ConfigMap wins over the istiod image when they disagree.
        let mut values: Value = serde_json::from_str(
            cluster
                .store
                .get(
                    kinds::configmaps(),
                    ISTIO_NAMESPACE,
                    "istio-sidecar-injector-1-22-3",
                )
                .unwrap()["data"]["values"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        values["global"]["hub"] = json!("mirror.example.com/istio");
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio-sidecar-injector-1-22-3", "namespace": ISTIO_NAMESPACE},
            "data": {"values": values.to_string()},
        });
        cluster.put(cm);
        let pod = cluster.admit(new_pod("pay", &[], &[])).unwrap();
        assert_eq!(
            proxy_image(&pod),
            Some("mirror.example.com/istio/proxyv2:1.22.3-distroless")
        );
    }

    #[test]
    fn proxy_image_falls_back_to_the_istiod_image_keeping_registry_port_and_variant() {
        assert_eq!(
            proxy_image_from_istiod("docker.io/istio/pilot:1.22.3-distroless"),
            "docker.io/istio/proxyv2:1.22.3-distroless"
        );
        assert_eq!(
            proxy_image_from_istiod("registry.local:5000/istio/pilot:1.21.2"),
            "registry.local:5000/istio/proxyv2:1.21.2"
        );
        assert_eq!(
            proxy_image_from_istiod("registry.local:5000/pilot"),
            "registry.local:5000/proxyv2:latest"
        );
        let mut cluster = Cluster::new();
        let opts = RevisionOptions {
            hub: "registry.local:5000/istio".into(),
            variant: Some("distroless".into()),
            injector_configmap: false,
            ..RevisionOptions::default()
        };
        cluster
            .revision(None, "1.22.3", &opts, true)
            .namespace("shop", &[("istio-injection", "enabled")]);
        let pod = cluster.admit(new_pod("shop", &[], &[])).unwrap();
        assert_eq!(
            proxy_image(&pod),
            Some("registry.local:5000/istio/proxyv2:1.22.3-distroless")
        );
    }

    #[test]
    fn a_full_proxy_image_in_the_values_ignores_hub_tag_and_variant() {
        let mut cluster = Cluster::new();
        let opts = RevisionOptions {
            proxy_image: Some("registry.example.com/istio/proxyv2:1.22.4".into()),
            variant: Some("distroless".into()),
            ..RevisionOptions::default()
        };
        cluster
            .revision(Some("1-22-3"), "1.22.3", &opts, true)
            .namespace("pay", &[("istio.io/rev", "1-22-3")]);
        let pod = cluster.admit(new_pod("pay", &[], &[])).unwrap();
        assert_eq!(
            proxy_image(&pod),
            Some("registry.example.com/istio/proxyv2:1.22.4")
        );
        // istio-init follows global.proxy_init.image, which is a plain name.
        assert_eq!(
            pod["spec"]["initContainers"][0]["image"],
            "docker.io/istio/proxyv2:1.22.3-distroless"
        );
    }

    #[derive(serde::Deserialize)]
    struct ImageCase {
        name: String,
        values: Value,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
        image: String,
    }

    #[test]
    fn every_case_of_the_shared_image_table_is_the_image_a_new_pod_gets() {
        let cases: Vec<ImageCase> =
            serde_yaml::from_str(include_str!("../../testdata/proxy-image-cases.yaml"))
                .expect("the image table parses");
        assert!(cases.len() > 10);
        for case in &cases {
            let mut cluster = Cluster::new();
            cluster
                .revision(Some("1-22-3"), "1.22.3", &RevisionOptions::default(), true)
                .namespace("pay", &[("istio.io/rev", "1-22-3")]);
            let name = "istio-sidecar-injector-1-22-3";
            let mut cm = (*cluster
                .store
                .get(kinds::configmaps(), ISTIO_NAMESPACE, name)
                .unwrap())
            .clone();
            cm["data"]["values"] = json!(json!({"global": case.values}).to_string());
            cluster.put(cm);
            let pod = cluster
                .admit(new_pod("pay", &[], &pairs(&case.annotations)))
                .unwrap();
            assert_eq!(
                proxy_image(&pod),
                Some(case.image.as_str()),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn the_image_type_annotation_replaces_the_variant_and_default_removes_it() {
        let mut cluster = Cluster::new();
        let opts = RevisionOptions {
            variant: Some("distroless".into()),
            ..RevisionOptions::default()
        };
        cluster
            .revision(Some("1-22-3"), "1.22.3", &opts, true)
            .namespace("pay", &[("istio.io/rev", "1-22-3")]);
        let image = |annotations: &[(&str, &str)]| {
            proxy_image(&cluster.admit(new_pod("pay", &[], annotations)).unwrap())
                .map(str::to_string)
        };
        assert_eq!(
            image(&[]).as_deref(),
            Some("docker.io/istio/proxyv2:1.22.3-distroless")
        );
        assert_eq!(
            image(&[("sidecar.istio.io/proxyImageType", "debug")]).as_deref(),
            Some("docker.io/istio/proxyv2:1.22.3-debug")
        );
        assert_eq!(
            image(&[("sidecar.istio.io/proxyImageType", "default")]).as_deref(),
            Some("docker.io/istio/proxyv2:1.22.3")
        );
        // A proxyImage without a `/` is ignored by the template.
        assert_eq!(
            image(&[("sidecar.istio.io/proxyImage", "proxyv2:0.1")]).as_deref(),
            Some("docker.io/istio/proxyv2:1.22.3-distroless")
        );
    }

    #[test]
    fn proxy_image_annotation_overrides_the_revision_image() {
        let mut cluster = default_and_canary();
        cluster.namespace("shop", &[("istio-injection", "enabled")]);
        let custom = "registry.example.com/istio/proxyv2:1.21.2-debug";
        let pod = cluster
            .admit(new_pod(
                "shop",
                &[],
                &[("sidecar.istio.io/proxyImage", custom)],
            ))
            .unwrap();
        assert_eq!(proxy_image(&pod), Some(custom));
        assert_eq!(pod["spec"]["initContainers"][0]["image"], custom);
    }

    #[test]
    fn a_registry_mirror_called_after_the_injector_rewrites_the_proxy_image() {
        let mut cluster = default_and_canary();
        cluster.namespace("pay", &[("istio.io/rev", "1-22-3")]);
        cluster.put(registry_mirror_webhook(
            "docker.io/istio/",
            "mirror.example.com/istio/",
        ));
        let pod = cluster.admit(new_pod("pay", &[], &[])).unwrap();
        assert_eq!(
            proxy_image(&pod),
            Some("mirror.example.com/istio/proxyv2:1.22.3")
        );
        assert_eq!(
            pod["spec"]["initContainers"][0]["image"],
            "mirror.example.com/istio/proxyv2:1.22.3"
        );
        // Other registries are left alone.
        assert_eq!(pod["spec"]["containers"][0]["image"], "nginx:1.27");
        assert_eq!(injected_revision(&pod).as_deref(), Some("1-22-3"));
    }

    #[test]
    fn a_dry_run_is_refused_when_a_matching_webhook_may_have_side_effects() {
        let mut cluster = default_and_canary();
        cluster.namespace("pay", &[("istio.io/rev", "1-22-3")]);
        let mut mwc = injector_webhook_configuration(Some("1-22-3"), false);
        mwc["webhooks"][0]["sideEffects"] = json!("Unknown");
        cluster.put(mwc);
        let mut pod = new_pod("pay", &[], &[]);
        let err = admit_pod(&cluster.store, &mut pod, true).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "admission webhook \"rev.namespace.sidecar-injector.istio.io\" does not support dry run"
        );
        // A real create still goes through.
        assert!(admit_pod(&cluster.store, &mut new_pod("pay", &[], &[]), false).is_ok());
    }

    #[test]
    fn webhooks_that_do_not_cover_pod_create_are_not_called() {
        let mut cluster = Cluster::new();
        cluster
            .revision(Some("1-22-3"), "1.22.3", &RevisionOptions::default(), false)
            .namespace("pay", &[("istio.io/rev", "1-22-3")]);
        let mut mwc = injector_webhook_configuration(Some("1-22-3"), false);
        for webhook in mwc["webhooks"].as_array_mut().unwrap() {
            webhook["rules"][0]["resources"] = json!(["deployments"]);
            webhook["rules"][0]["apiGroups"] = json!(["apps"]);
        }
        cluster.put(mwc);
        // The istiod is not Ready, yet nothing fails: no webhook was called.
        assert!(cluster.admit(new_pod("pay", &[], &[])).is_ok());
    }

    #[test]
    fn pods_in_system_namespaces_and_host_network_pods_are_declined_by_the_injector() {
        let mut cluster = default_and_canary();
        cluster
            .namespace("kube-system", &[("istio-injection", "enabled")])
            .namespace("shop", &[("istio-injection", "enabled")]);
        assert_eq!(
            proxy_image(&cluster.admit(new_pod("kube-system", &[], &[])).unwrap()),
            None
        );
        let mut host = new_pod("shop", &[], &[]);
        host["spec"]["hostNetwork"] = json!(true);
        assert_eq!(proxy_image(&cluster.admit(host).unwrap()), None);
    }

    #[test]
    fn the_charts_webhook_configurations_have_the_expected_webhooks() {
        let names = |mwc: &Value| -> Vec<String> {
            mwc["webhooks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["name"].as_str().unwrap().to_string())
                .collect()
        };
        let default = injector_webhook_configuration(None, false);
        assert_eq!(default["metadata"]["name"], "istio-sidecar-injector");
        assert_eq!(
            names(&default),
            [
                "rev.namespace.sidecar-injector.istio.io",
                "rev.object.sidecar-injector.istio.io",
                "namespace.sidecar-injector.istio.io",
                "object.sidecar-injector.istio.io"
            ]
        );
        assert_eq!(
            default["webhooks"][0]["clientConfig"]["service"]["name"],
            "istiod"
        );
        let revisioned = injector_webhook_configuration(Some("1-22-3"), false);
        assert_eq!(
            revisioned["metadata"]["name"],
            "istio-sidecar-injector-1-22-3"
        );
        assert_eq!(names(&revisioned).len(), 2);
        assert_eq!(
            revisioned["webhooks"][1]["clientConfig"]["service"]["name"],
            "istiod-1-22-3"
        );
        let tag = &revision_tag_objects("default", Some("1-21-2"))[0];
        assert_eq!(tag["metadata"]["name"], "istio-revision-tag-default");
        assert_eq!(tag["metadata"]["labels"]["istio.io/tag"], "default");
        assert_eq!(tag["metadata"]["labels"]["istio.io/rev"], "1-21-2");
        assert_eq!(names(tag).len(), 4);
        assert_eq!(
            names(&revision_tag_objects("prod-stable", Some("1-21-2"))[0]).len(),
            2
        );
        let deactivated = injector_webhook_configuration(None, true);
        assert_eq!(
            deactivated["webhooks"][2]["namespaceSelector"],
            json!({"matchLabels": {"istio.io/deactivated": "never-match"}})
        );
    }
}
