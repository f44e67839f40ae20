//! The Gateway API objects the plugin reads (`gateway.networking.k8s.io/v1`
//! Gateway and GatewayClass), as typed resources the API layer can LIST and
//! WATCH, and the compact structs the model sees.
//!
//! k8s-openapi has no Gateway API types (they are CRDs), so the two
//! resources are declared here with only the fields the plugin reads
//! (shapes from kubernetes-sigs/gateway-api `apis/v1/gateway_types.go` and
//! `gatewayclass_types.go`); unknown fields are ignored when decoding.
//! Implementing k8s-openapi's `Resource` and `Metadata` gives them kube's
//! `Resource` too, so `ApiClient::list_all`, `get`, `patch` and `watch_set`
//! take them like any built-in kind.
//!
//! A cluster without the Gateway API CRDs answers their LIST with 404: the
//! snapshot then says [`GatewayApiSnapshot::installed`] is false, which is
//! not an error.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use serde::{Deserialize, Serialize};

use super::{Labels, labels_of, name_of, namespace_of};

/// The Gateway API group.
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

/// A `Gateway` (`gateway.networking.k8s.io/v1`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gateway {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: GatewaySpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GatewayStatus>,
}

/// The fields of `Gateway.spec` the plugin reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(default)]
    pub gateway_class_name: String,
    #[serde(default)]
    pub listeners: Vec<Listener>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<GatewayAddress>,
}

/// One listener: its name, port and protocol.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub port: i32,
    #[serde(default)]
    pub protocol: String,
}

/// An address in `spec.addresses` or `status.addresses`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayAddress {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default)]
    pub value: String,
}

/// The fields of `Gateway.status` the plugin reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayStatus {
    #[serde(default)]
    pub addresses: Vec<GatewayAddress>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

impl k8s_openapi::Resource for Gateway {
    const API_VERSION: &'static str = "gateway.networking.k8s.io/v1";
    const GROUP: &'static str = GATEWAY_API_GROUP;
    const KIND: &'static str = "Gateway";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "gateways";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::ListableResource for Gateway {
    const LIST_KIND: &'static str = "GatewayList";
}

impl k8s_openapi::Metadata for Gateway {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A `GatewayClass` (`gateway.networking.k8s.io/v1`, cluster-scoped).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayClass {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: GatewayClassSpec,
}

/// `GatewayClass.spec.controllerName`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClassSpec {
    #[serde(default)]
    pub controller_name: String,
}

impl k8s_openapi::Resource for GatewayClass {
    const API_VERSION: &'static str = "gateway.networking.k8s.io/v1";
    const GROUP: &'static str = GATEWAY_API_GROUP;
    const KIND: &'static str = "GatewayClass";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "gatewayclasses";
    type Scope = k8s_openapi::ClusterResourceScope;
}

impl k8s_openapi::ListableResource for GatewayClass {
    const LIST_KIND: &'static str = "GatewayClassList";
}

impl k8s_openapi::Metadata for GatewayClass {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// One condition of a Gateway's status, as the model reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConditionInfo {
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
    /// The generation the condition was written for (`None`: not set).
    pub observed_generation: Option<i64>,
}

impl ConditionInfo {
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// A Gateway, reduced to what the model needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GatewayInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// All labels (`istio.io/rev`, `istio.io/waypoint-for`, ...).
    pub labels: Labels,
    /// All annotations (`gateway.istio.io/name-override`,
    /// `sidecar.istio.io/proxyImage`, ...).
    pub annotations: Labels,
    pub class: String,
    pub generation: i64,
    /// `metadata.resourceVersion`: the precondition of a write to it.
    pub resource_version: String,
    /// `spec.addresses` types (`IPAddress`, `Hostname`; `None` for unset).
    pub address_types: Vec<Option<String>>,
    /// `status.addresses` values.
    pub addresses: Vec<String>,
    /// `status.conditions` by type (`Accepted`, `Programmed`).
    pub conditions: BTreeMap<String, ConditionInfo>,
}

impl GatewayInfo {
    /// The `Programmed` condition, if any.
    pub fn programmed(&self) -> Option<&ConditionInfo> {
        self.conditions.get("Programmed")
    }
}

impl From<&Gateway> for GatewayInfo {
    fn from(g: &Gateway) -> Self {
        let meta = &g.metadata;
        let status = g.status.clone().unwrap_or_default();
        GatewayInfo {
            namespace: namespace_of(meta),
            name: name_of(meta),
            uid: meta.uid.clone().unwrap_or_default(),
            labels: labels_of(meta),
            annotations: meta.annotations.clone().unwrap_or_default(),
            class: g.spec.gateway_class_name.clone(),
            generation: meta.generation.unwrap_or(0),
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            address_types: g.spec.addresses.iter().map(|a| a.type_.clone()).collect(),
            addresses: status.addresses.iter().map(|a| a.value.clone()).collect(),
            conditions: status
                .conditions
                .iter()
                .map(|c| {
                    (
                        c.type_.clone(),
                        ConditionInfo {
                            status: c.status.clone(),
                            reason: c.reason.clone(),
                            message: c.message.clone(),
                            observed_generation: c.observed_generation,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// A GatewayClass: its name and controller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayClassInfo {
    pub name: String,
    pub controller: String,
}

impl From<&GatewayClass> for GatewayClassInfo {
    fn from(c: &GatewayClass) -> Self {
        GatewayClassInfo {
            name: name_of(&c.metadata),
            controller: c.spec.controller_name.clone(),
        }
    }
}

/// What the Gateway API LISTs gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GatewayApiSnapshot {
    /// The Gateway API CRDs are installed (the Gateway LIST did not answer 404).
    pub installed: bool,
    /// LIST Gateways in the read namespaces.
    pub gateways: Vec<GatewayInfo>,
    /// LIST GatewayClasses (cluster-scoped).
    pub classes: Vec<GatewayClassInfo>,
}
