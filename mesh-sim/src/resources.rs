//! The table of resource kinds the simulated API server serves.
//!
//! Discovery documents, URL routing and the store's buckets all come from this
//! one table, so adding a kind is one line here (plus controllers if it has any).

/// One kind of object the server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resource {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    /// Lower-case plural used in URLs (`deployments`).
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Subresources served under `<plural>/<name>/<sub>`.
    pub subresources: &'static [&'static str],
}

impl Resource {
    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// A stable identifier such as `apps/v1/deployments` or `v1/pods`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.api_version(), self.plural)
    }

    /// Whether the object has a `spec` whose changes bump `metadata.generation`.
    pub fn has_generation(&self) -> bool {
        matches!(
            self.kind,
            "Deployment"
                | "ReplicaSet"
                | "StatefulSet"
                | "DaemonSet"
                | "Job"
                | "CronJob"
                | "PodDisruptionBudget"
                | "Rollout"
                | "GatewayClass"
                | "Gateway"
                | "HTTPRoute"
        )
    }

    /// A kind served from a CustomResourceDefinition ([`GATEWAY_API`],
    /// Argo's Rollout), not compiled into the API server: strategic merge
    /// patches are refused for it, and it is served only while its CRDs are
    /// installed.
    pub fn is_custom(&self) -> bool {
        self.group == ARGO_GROUP || GATEWAY_API.iter().any(|r| r == self)
    }
}

const VERBS_SUBS_SCALE_STATUS: &[&str] = &["status", "scale"];
const SUBS_STATUS: &[&str] = &["status"];
const NONE: &[&str] = &[];

macro_rules! res {
    ($group:expr, $version:expr, $plural:expr, $singular:expr, $kind:expr, $namespaced:expr, $short:expr, $subs:expr) => {
        Resource {
            group: $group,
            version: $version,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            namespaced: $namespaced,
            short_names: $short,
            subresources: $subs,
        }
    };
}

/// Every kind the server knows. Objects of unknown kinds loaded from manifests
/// (custom resources) are registered at run time by [`crate::store::Store`].
pub static BUILTIN: &[Resource] = &[
    res!(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        SUBS_STATUS
    ),
    res!(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        false,
        &["no"],
        SUBS_STATUS
    ),
    res!(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        &["status", "log", "eviction"]
    ),
    res!(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        SUBS_STATUS
    ),
    res!(
        "",
        "v1",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        NONE
    ),
    res!(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        NONE
    ),
    res!("", "v1", "secrets", "secret", "Secret", true, NONE, NONE),
    res!(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        NONE
    ),
    res!("", "v1", "events", "event", "Event", true, &["ev"], NONE),
    res!(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        VERBS_SUBS_SCALE_STATUS
    ),
    res!(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        VERBS_SUBS_SCALE_STATUS
    ),
    res!(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        VERBS_SUBS_SCALE_STATUS
    ),
    res!(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
        SUBS_STATUS
    ),
    res!(
        "apps",
        "v1",
        "controllerrevisions",
        "controllerrevision",
        "ControllerRevision",
        true,
        NONE,
        NONE
    ),
    res!("batch", "v1", "jobs", "job", "Job", true, NONE, SUBS_STATUS),
    res!(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        &["cj"],
        SUBS_STATUS
    ),
    res!(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        SUBS_STATUS
    ),
    res!(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        NONE,
        NONE
    ),
    res!(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        "MutatingWebhookConfiguration",
        false,
        NONE,
        NONE
    ),
    res!(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        "ValidatingWebhookConfiguration",
        false,
        NONE,
        NONE
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        NONE,
        NONE
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        NONE,
        NONE
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        NONE,
        NONE
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        NONE,
        NONE
    ),
    // Argo Rollouts' custom resource, as its CustomResourceDefinition
    // (`manifests/crds/rollout-crd.yaml` in argoproj/argo-rollouts) declares
    // it: short name `ro`, the status and scale subresources. Served only
    // while the cluster "has Argo Rollouts installed"
    // ([`crate::world::SimConfig::argo_rollouts`]).
    res!(
        ARGO_GROUP,
        "v1alpha1",
        "rollouts",
        "rollout",
        "Rollout",
        true,
        &["ro"],
        VERBS_SUBS_SCALE_STATUS
    ),
];

/// The API group of Argo Rollouts' kinds.
pub const ARGO_GROUP: &str = "argoproj.io";
/// The Gateway API's kinds (`gateway.networking.k8s.io/v1`, standard
/// channel), as its CRDs define them (kubernetes-sigs/gateway-api
/// `config/crd/standard/`): names, short names (`gc`, `gtw`), scope and the
/// `status` subresource. A cluster serves them only once the CRDs are
/// installed; [`crate::world::SimConfig::gateway_api`] says whether they are.
pub static GATEWAY_API: &[Resource] = &[
    res!(
        "gateway.networking.k8s.io",
        "v1",
        "gatewayclasses",
        "gatewayclass",
        "GatewayClass",
        false,
        &["gc"],
        SUBS_STATUS
    ),
    res!(
        "gateway.networking.k8s.io",
        "v1",
        "gateways",
        "gateway",
        "Gateway",
        true,
        &["gtw"],
        SUBS_STATUS
    ),
    res!(
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        "httproute",
        "HTTPRoute",
        true,
        NONE,
        SUBS_STATUS
    ),
];

/// Well-known kinds, by name, for code that needs one specific kind.
pub mod kinds {
    use super::{BUILTIN, Resource};

    fn by_kind(kind: &str) -> &'static Resource {
        BUILTIN
            .iter()
            .find(|r| r.kind == kind)
            .expect("builtin kind")
    }
    pub fn namespaces() -> &'static Resource {
        by_kind("Namespace")
    }
    pub fn nodes() -> &'static Resource {
        by_kind("Node")
    }
    pub fn pods() -> &'static Resource {
        by_kind("Pod")
    }
    pub fn services() -> &'static Resource {
        by_kind("Service")
    }
    pub fn endpoints() -> &'static Resource {
        by_kind("Endpoints")
    }
    pub fn configmaps() -> &'static Resource {
        by_kind("ConfigMap")
    }
    pub fn serviceaccounts() -> &'static Resource {
        by_kind("ServiceAccount")
    }
    pub fn events() -> &'static Resource {
        by_kind("Event")
    }
    pub fn deployments() -> &'static Resource {
        by_kind("Deployment")
    }
    pub fn replicasets() -> &'static Resource {
        by_kind("ReplicaSet")
    }
    pub fn statefulsets() -> &'static Resource {
        by_kind("StatefulSet")
    }
    pub fn daemonsets() -> &'static Resource {
        by_kind("DaemonSet")
    }
    pub fn controllerrevisions() -> &'static Resource {
        by_kind("ControllerRevision")
    }
    pub fn jobs() -> &'static Resource {
        by_kind("Job")
    }
    pub fn cronjobs() -> &'static Resource {
        by_kind("CronJob")
    }
    pub fn rollouts() -> &'static Resource {
        by_kind("Rollout")
    }
    pub fn pdbs() -> &'static Resource {
        by_kind("PodDisruptionBudget")
    }
    pub fn endpointslices() -> &'static Resource {
        by_kind("EndpointSlice")
    }
    pub fn mutating_webhooks() -> &'static Resource {
        by_kind("MutatingWebhookConfiguration")
    }
    pub fn validating_webhooks() -> &'static Resource {
        by_kind("ValidatingWebhookConfiguration")
    }

    fn gateway_api(kind: &str) -> &'static Resource {
        super::GATEWAY_API
            .iter()
            .find(|r| r.kind == kind)
            .expect("a Gateway API kind")
    }
    pub fn gateway_classes() -> &'static Resource {
        gateway_api("GatewayClass")
    }
    pub fn gateways() -> &'static Resource {
        gateway_api("Gateway")
    }
    pub fn http_routes() -> &'static Resource {
        gateway_api("HTTPRoute")
    }
}

/// Finds a builtin resource by group, version and plural (as in a URL).
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    BUILTIN
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a Gateway API kind by group, version and plural (as in a URL),
/// whether or not its CRDs are installed.
pub fn lookup_custom(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    GATEWAY_API
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a builtin or Gateway API resource by `apiVersion` and `kind` (as in
/// a manifest or an owner reference). Whether a custom kind is served is the
/// caller's question ([`crate::world::World::serves`]).
pub fn lookup_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    BUILTIN
        .iter()
        .chain(GATEWAY_API)
        .find(|r| r.api_version() == api_version && r.kind == kind)
}
