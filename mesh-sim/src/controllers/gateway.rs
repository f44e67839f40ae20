//! istiod's Gateway API controllers: the GatewayClasses it installs, and the
//! Deployment, Service and ServiceAccount it provisions for every `Gateway`
//! of one of its classes, with the Gateway's `Accepted` and `Programmed`
//! conditions.
//!
//! Written from istio/istio (paths below), separately from the plugin's
//! model of the same rules:
//!
//! ```text
//! Gateway ─► class: the GatewayClass's controllerName, else the builtin
//!            (istio, istio-waypoint, istio-east-west)       classinfo.go
//!         ─► which istiod: the Gateway's istio.io/rev, else its namespace's,
//!            else the default tag / default revision       tag_watcher.go IsMine
//!         ─► that istiod Ready? (no: nothing is rendered, status untouched)
//!         ─► render kube-gateway.yaml / waypoint.yaml with its proxy image
//!         ─► server-side apply, field manager istio.io/gateway-controller,
//!            force; objects without gateway.istio.io/managed left alone
//!                                                 deploymentcontroller.go
//!         ─► status: Accepted; Programmed once the Service has a Ready
//!            endpoint (and a LoadBalancer address)    gatewaycommon/context.go
//! ```
//!
//! A Gateway's labels and annotations are copied into what is rendered (the
//! pod template included), so moving it with `istio.io/rev` changes the
//! template and rolls the Deployment; the template's `istio.io/rev`
//! annotation names the istiod that rendered it. Anything that could change
//! the outcome wakes the controller (see `state.rs`): the Gateway, an object
//! labelled with its name (someone edits its Service), its namespace, the
//! classes, webhook configurations, and istio-system (an istiod becoming
//! Ready, a tag Service, an injector ConfigMap).
//!
//! Not modelled: HorizontalPodAutoscaler and PodDisruptionBudget (rendered
//! only with a class or parameters overlay), overlays themselves, ListenerSets,
//! `spec.infrastructure.parametersRef`, HTTPRoute status.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::util::{self, At, label, name_of, namespace_of, str_at};
use crate::inject::{ISTIO_NAMESPACE, revision_proxy_image};
use crate::resources::{Resource, kinds};
use crate::store::ObjKey;
use crate::world::{World, WriteOptions};

/// Label on everything rendered for a Gateway, and the generated selector.
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";
/// The Gateway's class, on everything rendered for it.
pub const GATEWAY_CLASS_LABEL: &str = "gateway.networking.k8s.io/gateway-class-name";
/// `gateway.istio.io/managed`: set on every object istiod applies; one that
/// exists without it is never taken over (`canManage`).
pub const MANAGED_LABEL: &str = "gateway.istio.io/managed";
/// istiod's field manager for everything it applies (`features.ManagedGatewayController`).
pub const FIELD_MANAGER: &str = "istio.io/gateway-controller";
/// The revision label, on Gateways and namespaces.
pub const REV_LABEL: &str = "istio.io/rev";
const TAG_LABEL: &str = "istio.io/tag";
/// The annotation istiod claims a Gateway with (`ControllerVersionAnnotation`).
const CONTROLLER_VERSION_ANNOTATION: &str = "gateway.istio.io/controller-version";
/// istiod 1.18+'s controller version.
const CONTROLLER_VERSION: i64 = 5;
/// Annotations never copied from the Gateway into what is rendered.
const OMITTED_ANNOTATIONS: [&str; 4] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "gateway.istio.io/name-override",
    "gateway.istio.io/service-account",
    CONTROLLER_VERSION_ANNOTATION,
];

/// Which of the two chart templates renders a class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Template {
    /// `files/kube-gateway.yaml` (`proxy router`).
    KubeGateway,
    /// `files/waypoint.yaml` (`proxy waypoint`).
    Waypoint,
}

/// One of Istio's gateway controllers (`ClassInfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ClassInfo {
    controller: &'static str,
    /// The value of [`MANAGED_LABEL`] (`ControllerLabel`).
    controller_label: &'static str,
    template: Template,
    /// Names get `-<class>` appended (not for waypoints and east-west).
    name_suffix: bool,
    service_type: &'static str,
    description: &'static str,
}

const CLASS_INFOS: [ClassInfo; 3] = [
    ClassInfo {
        controller: "istio.io/gateway-controller",
        controller_label: "istio.io-gateway-controller",
        template: Template::KubeGateway,
        name_suffix: true,
        service_type: "LoadBalancer",
        description: "The default Istio GatewayClass",
    },
    ClassInfo {
        controller: "istio.io/mesh-controller",
        controller_label: "istio.io-mesh-controller",
        template: Template::Waypoint,
        name_suffix: false,
        service_type: "ClusterIP",
        description: "The default Istio waypoint GatewayClass",
    },
    ClassInfo {
        controller: "istio.io/eastwest-controller",
        controller_label: "istio.io-eastwest-controller",
        template: Template::Waypoint,
        name_suffix: false,
        service_type: "LoadBalancer",
        description: "The default GatewayClass for Istio East West Gateways",
    },
];

/// The classes istiod installs, and their controllers (`BuiltinGatewayClasses`,
/// with ambient waypoints and multi-network enabled).
const BUILTIN_CLASSES: [(&str, &str); 3] = [
    ("istio", "istio.io/gateway-controller"),
    ("istio-waypoint", "istio.io/mesh-controller"),
    ("istio-east-west", "istio.io/eastwest-controller"),
];

fn class_info(controller: &str) -> Option<ClassInfo> {
    CLASS_INFOS.into_iter().find(|c| c.controller == controller)
}

/// An istiod revision, as the gateway controller needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Istiod {
    /// `istio.io/rev` of the istiod Deployment (`default` when absent).
    pub revision: String,
    pub image: String,
    pub ready: bool,
    /// The revision and the tags pointing at it (`GetMyTags`).
    pub tags: BTreeSet<String>,
}

/// Every istiod of istio-system, sorted by revision.
pub fn istiods(world: &World) -> Vec<Istiod> {
    let store = &world.store;
    let mut found: Vec<Istiod> = store
        .list(kinds::deployments(), Some(ISTIO_NAMESPACE))
        .filter(|d| label(d, "app") == Some("istiod"))
        .map(|d| {
            let revision = label(&d, REV_LABEL).unwrap_or("default").to_string();
            let image = d
                .at("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("name").and_then(Value::as_str) == Some("discovery"))
                        .or_else(|| cs.first())
                })
                .and_then(|c| c.get("image").and_then(Value::as_str))
                .unwrap_or("")
                .to_string();
            let ready = d.at("/status/readyReplicas").and_then(Value::as_i64) > Some(0);
            Istiod {
                tags: BTreeSet::from([revision.clone()]),
                revision,
                image,
                ready,
            }
        })
        .collect();
    // Tags: webhook configurations labelled istio.io/tag and Services of
    // istio-system labelled istio.io/tag, each by its istio.io/rev label.
    let tagged = store
        .list(kinds::mutating_webhooks(), None)
        .chain(store.list(kinds::services(), Some(ISTIO_NAMESPACE)))
        .filter_map(|o| {
            let tag = label(&o, TAG_LABEL)?.to_string();
            let rev = label(&o, REV_LABEL)?.to_string();
            Some((tag, rev))
        })
        .collect::<Vec<_>>();
    for istiod in &mut found {
        istiod.tags.extend(
            tagged
                .iter()
                .filter(|(_, rev)| *rev == istiod.revision)
                .map(|(tag, _)| tag.clone()),
        );
    }
    found.sort_by(|a, b| a.revision.cmp(&b.revision));
    found
}

/// The istiod that reconciles a Gateway, as each istiod decides for itself
/// (`IsMine`): the Gateway's `istio.io/rev`, else its namespace's, names a
/// revision or one of its tags; with neither, the istiod with the `default`
/// tag, else the one the `istiod-default-validator` webhook configuration
/// names when no `istio-revision-tag-default` exists.
pub fn serving_istiod(world: &World, gateway: &Value, istiods: &[Istiod]) -> Option<Istiod> {
    let selected = match label(gateway, REV_LABEL) {
        Some(rev) => rev.to_string(),
        None => {
            let namespace = world
                .store
                .get(kinds::namespaces(), "", namespace_of(gateway))?;
            label(&namespace, REV_LABEL).unwrap_or("").to_string()
        }
    };
    if !selected.is_empty() {
        return istiods.iter().find(|i| i.tags.contains(&selected)).cloned();
    }
    if let Some(tagged) = istiods.iter().find(|i| i.tags.contains("default")) {
        return Some(tagged.clone());
    }
    let default_tag_exists = world
        .store
        .get(kinds::mutating_webhooks(), "", "istio-revision-tag-default")
        .is_some();
    if default_tag_exists {
        return None;
    }
    let validator =
        world
            .store
            .get(kinds::validating_webhooks(), "", "istiod-default-validator")?;
    let default_revision = label(&validator, REV_LABEL)?;
    istiods
        .iter()
        .find(|i| i.revision == default_revision)
        .cloned()
}

/// The controller behind a class name: the GatewayClass's `controllerName`,
/// else the builtin class's.
fn controller_of_class(world: &World, class: &str) -> Option<String> {
    match world.store.get(kinds::gateway_classes(), "", class) {
        Some(gc) => str_at(&gc, "/spec/controllerName").map(str::to_string),
        None => BUILTIN_CLASSES
            .iter()
            .find(|(name, _)| *name == class)
            .map(|(_, controller)| controller.to_string()),
    }
}

/// Creates the builtin GatewayClasses once an istiod runs (the class
/// controller only creates missing ones), and accepts every class whose
/// controller is Istio's.
pub fn sync_classes(world: &mut World, istiods: &[Istiod]) {
    if !world.serves(kinds::gateway_classes()) || !istiods.iter().any(|i| i.ready) {
        return;
    }
    for (name, controller) in BUILTIN_CLASSES {
        if world
            .store
            .get(kinds::gateway_classes(), "", name)
            .is_some()
        {
            continue;
        }
        let description = class_info(controller).map_or("", |c| c.description);
        let class = json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": name},
            "spec": {"controllerName": controller, "description": description},
        });
        let _ = world.create(kinds::gateway_classes(), class, &WriteOptions::default());
    }
    let now = world.clock.now_rfc3339();
    let classes: Vec<_> = world.store.list(kinds::gateway_classes(), None).collect();
    for class in classes {
        let controller = str_at(&class, "/spec/controllerName").unwrap_or("");
        if class_info(controller).is_none() {
            continue;
        }
        let generation = util::generation_of(&class);
        let mut conditions = util::conditions_of(&class);
        set_gateway_condition(
            &mut conditions,
            "Accepted",
            true,
            "Accepted",
            "Handled by Istio controller",
            generation,
            &now,
        );
        let mut status = class.get("status").cloned().unwrap_or_else(|| json!({}));
        status["conditions"] = Value::Array(conditions);
        util::write_status(world, kinds::gateway_classes(), &class, status);
    }
}

/// Reconciles one Gateway.
pub fn sync(world: &mut World, key: &ObjKey, istiods: &[Istiod]) {
    let Some(gateway) = util::get(world, kinds::gateways(), key) else {
        // Deleted: garbage collection takes what was rendered for it.
        return;
    };
    if util::is_being_deleted(&gateway) {
        return;
    }
    let class = str_at(&gateway, "/spec/gatewayClassName").unwrap_or("");
    let Some(info) = controller_of_class(world, class).and_then(|c| class_info(&c)) else {
        return;
    };
    if !is_managed(&gateway) {
        return;
    }
    let Some(istiod) = serving_istiod(world, &gateway, istiods) else {
        return;
    };
    if !istiod.ready {
        return;
    }
    let gateway = claim(world, &gateway);
    let input = Input::of(world, &gateway, info, &istiod);
    for (resource, object) in render(&input) {
        apply(world, resource, object, info.controller_label);
    }
    write_gateway_status(world, &input);
}

/// `IsManaged`: no address, or one IP address; a Hostname address points at
/// a Service someone else runs.
fn is_managed(gateway: &Value) -> bool {
    let addresses = gateway
        .at("/spec/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match addresses.as_slice() {
        [] => true,
        [one] => matches!(
            one.get("type").and_then(Value::as_str),
            None | Some("IPAddress")
        ),
        _ => false,
    }
}

/// Writes the controller-version annotation the first time (istiod does it
/// through the status subresource, which may change metadata).
fn claim(world: &mut World, gateway: &Value) -> Value {
    let current = util::annotation(gateway, CONTROLLER_VERSION_ANNOTATION)
        .and_then(|v| v.parse::<i64>().ok());
    if current.is_some_and(|v| v >= CONTROLLER_VERSION) {
        return gateway.clone();
    }
    let mut next = gateway.clone();
    util::insert_str(
        &mut next["metadata"],
        "annotations",
        CONTROLLER_VERSION_ANNOTATION,
        &CONTROLLER_VERSION.to_string(),
    );
    match util::write_object(world, kinds::gateways(), next) {
        Some(stored) => (*stored).clone(),
        None => gateway.clone(),
    }
}

/// What the templates are rendered from (`TemplateInput` and `derivedInput`).
struct Input {
    name: String,
    namespace: String,
    uid: String,
    class: String,
    info: ClassInfo,
    deployment_name: String,
    service_account: String,
    revision: String,
    proxy_image: String,
    labels: Map<String, Value>,
    annotations: Map<String, Value>,
    service_type: String,
    /// `(name, port, appProtocol)`: the status port, then each listener port once.
    ports: Vec<(String, i64, String)>,
}

impl Input {
    fn of(world: &World, gateway: &Value, info: ClassInfo, istiod: &Istiod) -> Self {
        let name = name_of(gateway).to_string();
        let class = str_at(gateway, "/spec/gatewayClassName")
            .unwrap_or("")
            .to_string();
        let annotation = |key: &str| util::annotation(gateway, key).map(str::to_string);
        let default_name = if info.name_suffix {
            format!("{name}-{class}")
        } else {
            name.clone()
        };
        let mut labels = infrastructure(gateway, "labels");
        // setLabelOverrides: a gateway that is neither a waypoint nor an
        // east-west gateway is kept out of ambient capture.
        let waypoint_like = class.contains("waypoint") || class.contains("east-west");
        if !waypoint_like && !labels.contains_key("istio.io/dataplane-mode") {
            labels.insert("istio.io/dataplane-mode".into(), json!("none"));
        }
        let mut annotations = infrastructure(gateway, "annotations");
        for omitted in OMITTED_ANNOTATIONS {
            annotations.remove(omitted);
        }
        let gateway_annotations: BTreeMap<String, String> = gateway
            .at("/metadata/annotations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        Input {
            namespace: namespace_of(gateway).to_string(),
            uid: util::uid_of(gateway).to_string(),
            info,
            deployment_name: annotation("gateway.istio.io/name-override")
                .unwrap_or_else(|| default_name.clone()),
            service_account: annotation("gateway.istio.io/service-account").unwrap_or(default_name),
            revision: istiod.revision.clone(),
            proxy_image: revision_proxy_image(
                &world.store,
                &istiod.revision,
                &istiod.image,
                &gateway_annotations,
            ),
            labels,
            annotations,
            service_type: annotation("networking.istio.io/service-type")
                .unwrap_or_else(|| info.service_type.to_string()),
            ports: service_ports(gateway),
            class,
            name,
        }
    }

    fn owner_references(&self) -> Value {
        json!([{
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "name": self.name,
            "uid": self.uid,
        }])
    }

    /// The infrastructure labels plus the gateway name and class (and the
    /// managed label where the template puts it).
    fn labels_with(&self, managed: bool) -> Value {
        let mut labels = self.labels.clone();
        labels.insert(GATEWAY_NAME_LABEL.into(), json!(self.name));
        labels.insert(GATEWAY_CLASS_LABEL.into(), json!(self.class));
        if managed {
            labels.insert(MANAGED_LABEL.into(), json!(self.info.controller_label));
        }
        Value::Object(labels)
    }
}

/// `spec.infrastructure.<field>` (without `gateway.networking.k8s.io/`
/// keys) when set, else a copy of the Gateway's own (copying labels and
/// annotations is on by default).
fn infrastructure(gateway: &Value, field: &str) -> Map<String, Value> {
    if let Some(map) = gateway
        .at(&format!("/spec/infrastructure/{field}"))
        .and_then(Value::as_object)
    {
        return map
            .iter()
            .filter(|(k, _)| !k.starts_with("gateway.networking.k8s.io/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    }
    gateway
        .at(&format!("/metadata/{field}"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// `extractServicePorts`: `status-port` 15021, then each listener port once,
/// named after its listener (dots become dashes).
fn service_ports(gateway: &Value) -> Vec<(String, i64, String)> {
    let mut ports = vec![("status-port".to_string(), 15021, "tcp".to_string())];
    let mut seen = BTreeSet::new();
    for (i, listener) in gateway
        .at("/spec/listeners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(port) = listener.get("port").and_then(Value::as_i64) else {
            continue;
        };
        if !seen.insert(port) {
            continue;
        }
        let protocol = listener
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP")
            .to_lowercase();
        let mut name: String = listener
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .replace('.', "-")
            .chars()
            .take(63)
            .collect();
        if name.is_empty() {
            name = format!("{protocol}-{i}");
        }
        ports.push((name, port, protocol));
    }
    ports
}

/// The ServiceAccount, Deployment and Service of the class's template.
fn render(input: &Input) -> Vec<(&'static Resource, Value)> {
    let waypoint = input.info.template == Template::Waypoint;
    let metadata = |name: &str, managed: bool, extra_annotations: Map<String, Value>| {
        let mut annotations = extra_annotations;
        annotations.extend(input.annotations.clone());
        json!({
            "name": name,
            "namespace": input.namespace,
            "labels": input.labels_with(managed),
            "annotations": annotations,
            "ownerReferences": input.owner_references(),
        })
    };
    let service_account = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(&input.service_account, false, Map::new()),
    });

    let mut template_annotations = input.annotations.clone();
    template_annotations.insert(REV_LABEL.into(), json!(input.revision));
    template_annotations.insert("prometheus.io/path".into(), json!("/stats/prometheus"));
    template_annotations.insert("prometheus.io/port".into(), json!("15020"));
    template_annotations.insert("prometheus.io/scrape".into(), json!("true"));
    let mut template_labels = Map::new();
    template_labels.insert("sidecar.istio.io/inject".into(), json!("false"));
    if waypoint {
        template_labels.insert("istio.io/dataplane-mode".into(), json!("none"));
    }
    template_labels.insert(
        "service.istio.io/canonical-name".into(),
        json!(input.deployment_name),
    );
    template_labels.insert(
        "service.istio.io/canonical-revision".into(),
        json!("latest"),
    );
    if let Value::Object(labels) = input.labels_with(true) {
        template_labels.extend(labels);
    }
    let istiod_service = if input.revision == "default" {
        "istiod".to_string()
    } else {
        format!("istiod-{}", input.revision)
    };
    let args: Vec<Value> = if waypoint {
        vec![
            json!("proxy"),
            json!("waypoint"),
            json!("--domain"),
            json!("$(POD_NAMESPACE).svc.cluster.local"),
            json!("--serviceCluster"),
            json!(format!("{}.$(POD_NAMESPACE)", input.service_account)),
        ]
    } else {
        vec![
            json!("proxy"),
            json!("router"),
            json!("--domain"),
            json!("$(POD_NAMESPACE).svc.cluster.local"),
        ]
    };
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(&input.deployment_name, true, Map::new()),
        "spec": {
            "selector": {"matchLabels": {GATEWAY_NAME_LABEL: input.name}},
            "template": {
                "metadata": {"annotations": template_annotations, "labels": template_labels},
                "spec": {
                    "serviceAccountName": input.service_account,
                    "containers": [{
                        "name": "istio-proxy",
                        "image": input.proxy_image,
                        "args": args,
                        "ports": [
                            {"containerPort": 15020, "name": "metrics", "protocol": "TCP"},
                            {"containerPort": 15021, "name": "status-port", "protocol": "TCP"},
                            {"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"},
                        ],
                        "env": [
                            {"name": "CA_ADDR", "value": format!("{istiod_service}.{ISTIO_NAMESPACE}.svc:15012")},
                            {"name": "ISTIO_META_WORKLOAD_NAME", "value": input.deployment_name},
                        ],
                        "readinessProbe": {
                            "httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"},
                            "failureThreshold": 4,
                            "periodSeconds": 15,
                            "timeoutSeconds": 1,
                        },
                    }],
                },
            },
        },
    });

    let mut service_annotations = Map::new();
    if waypoint {
        service_annotations.insert(
            "networking.istio.io/traffic-distribution".into(),
            json!("PreferClose"),
        );
    }
    let ports: Vec<Value> = input
        .ports
        .iter()
        .map(|(name, port, app_protocol)| {
            json!({"name": name, "port": port, "protocol": "TCP", "appProtocol": app_protocol})
        })
        .collect();
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(&input.deployment_name, false, service_annotations),
        "spec": {
            "ipFamilyPolicy": "PreferDualStack",
            "ports": ports,
            "selector": {GATEWAY_NAME_LABEL: input.name},
            "type": input.service_type,
        },
    });
    vec![
        (kinds::serviceaccounts(), service_account),
        (kinds::deployments(), deployment),
        (kinds::services(), service),
    ]
}

/// `apply`: the managed label on every object, then a forced server-side
/// apply by [`FIELD_MANAGER`] — unless the object exists without the
/// managed label (`canManage`).
fn apply(
    world: &mut World,
    resource: &'static Resource,
    mut object: Value,
    controller_label: &str,
) {
    util::insert_str(
        &mut object["metadata"],
        "labels",
        MANAGED_LABEL,
        controller_label,
    );
    let key = ObjKey::of(&object);
    let current = world.store.get(resource, &key.namespace, &key.name);
    if let Some(current) = &current {
        if util::label(current, MANAGED_LABEL).is_none() {
            return;
        }
    }
    let current_value = current.as_deref().cloned().unwrap_or(Value::Null);
    let Ok(applied) = crate::patch::server_side_apply(
        &current_value,
        &object,
        resource.kind,
        FIELD_MANAGER,
        true,
    ) else {
        return;
    };
    let opts = WriteOptions {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_string()),
    };
    let result = if current.is_some() {
        world.update(resource, applied, &opts)
    } else {
        world.create(resource, applied, &opts)
    };
    if let Err(e) = result {
        tracing::debug!(kind = resource.kind, name = %key.name, error = %e, "gateway apply failed");
    }
}

/// Sets a `metav1.Condition` (`UpdateConditionIfChanged`): the transition
/// time moves only when the status does.
fn set_gateway_condition(
    conditions: &mut Vec<Value>,
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: i64,
    now: &str,
) {
    let status = if status { "True" } else { "False" };
    let transition = util::condition(conditions, kind)
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    let next = json!({
        "type": kind,
        "status": status,
        "observedGeneration": generation,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    });
    match conditions
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
    {
        Some(existing) => *existing = next,
        None => conditions.push(next),
    }
}

/// `Accepted`, and `Programmed` from the generated Service as
/// `ResolveGatewayInstances` sees it: Ready endpoints, and for a
/// LoadBalancer an assigned address; the addresses it is reachable at.
fn write_gateway_status(world: &mut World, input: &Input) {
    let Some(gateway) = world
        .store
        .get(kinds::gateways(), &input.namespace, &input.name)
    else {
        return;
    };
    let service = world
        .store
        .get(kinds::services(), &input.namespace, &input.deployment_name);
    let hostname = format!(
        "{}.{}.svc.cluster.local",
        input.deployment_name, input.namespace
    );
    let ready_endpoints = world
        .store
        .list(kinds::endpointslices(), Some(&input.namespace))
        .filter(|s| label(s, "kubernetes.io/service-name") == Some(input.deployment_name.as_str()))
        .flat_map(|s| {
            s.at("/endpoints")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter(|e| {
            e.at("/conditions/ready")
                .and_then(Value::as_bool)
                .unwrap_or(true)
        })
        .count();
    let load_balancer_ips: Vec<String> = service
        .as_ref()
        .and_then(|s| {
            s.at("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
        })
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("ip").and_then(Value::as_str).map(str::to_string))
        .collect();
    let cluster_ip = service
        .as_ref()
        .and_then(|s| str_at(s, "/spec/clusterIP"))
        .map(str::to_string);
    let is_load_balancer = input.service_type == "LoadBalancer";
    let listener_ports: Vec<i64> = input.ports.iter().skip(1).map(|(_, p, _)| *p).collect();
    let internal: Vec<String> = if ready_endpoints > 0 {
        listener_ports
            .iter()
            .map(|p| format!("{hostname}:{p}"))
            .collect()
    } else {
        Vec::new()
    };
    let (programmed, reason, message) = if service.is_none() {
        (
            false,
            "AddressNotAssigned",
            format!("Failed to assign to any requested addresses: hostname {hostname:?} not found"),
        )
    } else if ready_endpoints == 0 {
        (
            false,
            "AddressNotAssigned",
            format!(
                "Failed to assign to any requested addresses: no instances found for hostname {hostname:?}"
            ),
        )
    } else if is_load_balancer && load_balancer_ips.is_empty() {
        (
            false,
            "AddressNotAssigned",
            format!(
                "Assigned to service(s) {}, but failed to assign to all requested addresses: address pending for hostname {hostname:?}",
                internal.join(", ")
            ),
        )
    } else {
        (
            true,
            "Programmed",
            format!(
                "Resource programmed, assigned to service(s) {}",
                internal.join(", ")
            ),
        )
    };
    let generation = util::generation_of(&gateway);
    let now = world.clock.now_rfc3339();
    let mut conditions = util::conditions_of(&gateway);
    set_gateway_condition(
        &mut conditions,
        "Accepted",
        true,
        "Accepted",
        "Resource accepted",
        generation,
        &now,
    );
    set_gateway_condition(
        &mut conditions,
        "Programmed",
        programmed,
        reason,
        &message,
        generation,
        &now,
    );
    let mut addresses: Vec<Value> = Vec::new();
    if !load_balancer_ips.is_empty() {
        addresses.extend(
            load_balancer_ips
                .iter()
                .map(|ip| json!({"type": "IPAddress", "value": ip})),
        );
    } else if input.info.template == Template::Waypoint {
        if let Some(ip) = cluster_ip.filter(|_| ready_endpoints > 0) {
            addresses.push(json!({"type": "IPAddress", "value": ip}));
        }
        if ready_endpoints > 0 {
            addresses.push(json!({"type": "Hostname", "value": hostname}));
        }
    } else {
        addresses.push(json!({"type": "Hostname", "value": hostname}));
    }
    let routes: Vec<_> = world
        .store
        .list(kinds::http_routes(), None)
        .filter(|r| routes_to(r, &input.namespace, &input.name))
        .collect();
    let listeners: Vec<Value> = gateway
        .at("/spec/listeners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|l| {
            let name = l.get("name").and_then(Value::as_str).unwrap_or("");
            let attached = routes
                .iter()
                .filter(|r| route_section(r, &input.namespace, &input.name, name))
                .count();
            let previous = gateway
                .at("/status/listeners")
                .and_then(Value::as_array)
                .and_then(|ls| {
                    ls.iter()
                        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
                })
                .and_then(|p| p.get("conditions").and_then(Value::as_array).cloned())
                .unwrap_or_default();
            let mut conditions = previous;
            for (kind, reason, message) in [
                ("Accepted", "Accepted", "No errors found"),
                ("Programmed", "Programmed", "No errors found"),
                ("ResolvedRefs", "ResolvedRefs", "No errors found"),
            ] {
                set_gateway_condition(
                    &mut conditions,
                    kind,
                    true,
                    reason,
                    message,
                    generation,
                    &now,
                );
            }
            json!({
                "name": name,
                "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
                "attachedRoutes": attached,
                "conditions": conditions,
            })
        })
        .collect();
    let mut status = gateway.get("status").cloned().unwrap_or_else(|| json!({}));
    status["addresses"] = Value::Array(addresses);
    status["conditions"] = Value::Array(conditions);
    status["listeners"] = Value::Array(listeners);
    util::write_status(world, kinds::gateways(), &gateway, status);
}

/// Whether an HTTPRoute names the Gateway among its `parentRefs`.
fn routes_to(route: &Value, namespace: &str, name: &str) -> bool {
    parent_refs(route, namespace, name).next().is_some()
}

/// Whether an HTTPRoute attaches to one listener (a parentRef without a
/// `sectionName` attaches to every listener).
fn route_section(route: &Value, namespace: &str, name: &str, listener: &str) -> bool {
    parent_refs(route, namespace, name).any(|p| {
        p.get("sectionName")
            .and_then(Value::as_str)
            .is_none_or(|s| s == listener)
    })
}

fn parent_refs<'a>(
    route: &'a Value,
    namespace: &'a str,
    name: &'a str,
) -> impl Iterator<Item = &'a Value> + 'a {
    let route_namespace = namespace_of(route);
    route
        .at("/spec/parentRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |p| {
            p.get("name").and_then(Value::as_str) == Some(name)
                && p.get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(route_namespace)
                    == namespace
                && p.get("kind")
                    .and_then(Value::as_str)
                    .is_none_or(|k| k == "Gateway")
        })
}

/// The Gateway an object belongs to, by the label istiod puts on everything
/// it renders (EndpointSlices copy it from their Service).
pub fn gateway_of(obj: &Value) -> Option<ObjKey> {
    label(obj, GATEWAY_NAME_LABEL).map(|name| ObjKey::new(namespace_of(obj), name))
}

#[cfg(test)]
#[path = "gateway_tests.rs"]
mod tests;
