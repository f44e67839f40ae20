//! Typed writes: every change a plan makes to the cluster, as data.
//!
//! ```text
//! mesh (pure) ─► plan { actions: [.. Write { target, change, precondition, reason } ..] }
//!                                     │
//! run (the engine) ──────────────────►┴─► api: POST / PATCH / DELETE, exactly as written here
//! ```
//!
//! A plan decides *what* is sent: which object, which patch type and body,
//! under which precondition, and why. The engine only sends it (and, on a
//! conflict, asks the plan for the write against the object as it is now).
//! No command chooses a patch type, so tests of the pure plans assert the
//! exact request.

use serde::{Serialize, Serializer};
use serde_json::Value;

/// The kinds of object the plugin writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ObjectKind {
    Namespace,
    Service,
    Deployment,
    StatefulSet,
    DaemonSet,
    Pod,
    /// Argo Rollouts' `Rollout` (argoproj.io/v1alpha1).
    Rollout,
    /// `admissionregistration.k8s.io/v1` (cluster-scoped): `tag` writes
    /// revision tags' webhook configurations.
    MutatingWebhookConfiguration,
    /// A Gateway API `Gateway` (`gateway.networking.k8s.io/v1`).
    Gateway,
    /// Cluster-scoped: cordon and uncordon (`ztunnel-roll`).
    Node,
}

impl ObjectKind {
    /// The lowercase name kubectl uses (`deployment/x`, `service/x`).
    pub fn resource(self) -> &'static str {
        match self {
            ObjectKind::Namespace => "namespace",
            ObjectKind::Service => "service",
            ObjectKind::Deployment => "deployment",
            ObjectKind::StatefulSet => "statefulset",
            ObjectKind::DaemonSet => "daemonset",
            ObjectKind::Pod => "pod",
            ObjectKind::Rollout => "rollout",
            ObjectKind::MutatingWebhookConfiguration => "mutatingwebhookconfiguration",
            ObjectKind::Gateway => "gateway",
            ObjectKind::Node => "node",
        }
    }
}

/// The object a write goes to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub kind: ObjectKind,
    /// `None` for cluster-scoped objects (namespaces).
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn namespaced(kind: ObjectKind, namespace: &str, name: &str) -> Self {
        ObjectRef {
            kind,
            namespace: Some(namespace.to_string()),
            name: name.to_string(),
        }
    }

    pub fn cluster(kind: ObjectKind, name: &str) -> Self {
        ObjectRef {
            kind,
            namespace: None,
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    /// `shop/deployment/cart`, or `namespace/shop`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}/{}", self.kind.resource(), self.name),
            None => write!(f, "{}/{}", self.kind.resource(), self.name),
        }
    }
}

/// A patch and its type: the body is sent as written.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", content = "body", rename_all = "camelCase")]
pub enum Patch {
    /// `application/strategic-merge-patch+json`, as `kubectl rollout restart` sends.
    Strategic(Value),
    /// `application/merge-patch+json` (RFC 7386).
    Merge(Value),
    /// `application/json-patch+json` (RFC 6902): the array of operations.
    Json(Value),
}

impl Patch {
    /// The content type the request carries.
    pub fn content_type(&self) -> &'static str {
        match self {
            Patch::Strategic(_) => "application/strategic-merge-patch+json",
            Patch::Merge(_) => "application/merge-patch+json",
            Patch::Json(_) => "application/json-patch+json",
        }
    }

    pub fn body(&self) -> &Value {
        match self {
            Patch::Strategic(v) | Patch::Merge(v) | Patch::Json(v) => v,
        }
    }
}

/// What a write does to its target.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    /// POST the object, exactly this body (a create has no precondition:
    /// the server answers 409 AlreadyExists when the name is taken).
    Create(Value),
    Patch(Patch),
    /// DELETE (with the precondition's uid, so a replacement of the same
    /// name is never deleted by mistake).
    Delete,
    /// POST `pods/<name>/eviction` (pods only, with the precondition's uid):
    /// a delete that PodDisruptionBudgets may refuse, as `kubectl drain` makes.
    Evict,
}

/// What must still hold for the write to apply; otherwise the server
/// answers 409 and the engine re-reads the object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Precondition {
    /// Applies to whatever the object is now (idempotent writes, such as a
    /// restart patch carrying this run's timestamp).
    #[default]
    None,
    /// `metadata.resourceVersion` must still be this: the write was planned
    /// on exactly that version. For patches it travels in the body.
    ResourceVersion(String),
    /// `metadata.uid` must still be this (deletes).
    Uid(String),
}

/// One request that changes the cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Write {
    pub target: ObjectRef,
    pub change: Change,
    pub precondition: Precondition,
    /// Why, in one sentence (shown in plans and logs).
    pub reason: String,
}

impl Write {
    /// A patch of `target`.
    pub fn patch(target: ObjectRef, patch: Patch, reason: impl Into<String>) -> Self {
        Write {
            target,
            change: Change::Patch(patch),
            precondition: Precondition::None,
            reason: reason.into(),
        }
    }

    /// A create of `target` with `object` as the body.
    pub fn create(target: ObjectRef, object: Value, reason: impl Into<String>) -> Self {
        Write {
            target,
            change: Change::Create(object),
            precondition: Precondition::None,
            reason: reason.into(),
        }
    }

    /// A delete of `target`, only while it has `uid`.
    pub fn delete(target: ObjectRef, uid: &str, reason: impl Into<String>) -> Self {
        Write {
            target,
            change: Change::Delete,
            precondition: if uid.is_empty() {
                Precondition::None
            } else {
                Precondition::Uid(uid.to_string())
            },
            reason: reason.into(),
        }
    }

    /// An eviction of pod `target`, only while it has `uid`.
    pub fn evict(target: ObjectRef, uid: &str, reason: impl Into<String>) -> Self {
        Write {
            change: Change::Evict,
            ..Write::delete(target, uid, reason)
        }
    }

    /// The same write, applying only to `resource_version`.
    pub fn at_version(mut self, resource_version: &str) -> Self {
        self.precondition = if resource_version.is_empty() {
            Precondition::None
        } else {
            Precondition::ResourceVersion(resource_version.to_string())
        };
        self
    }

    /// The patch exactly as sent: for merge and strategic patches a
    /// resourceVersion precondition is `metadata.resourceVersion` in the
    /// body (that is how the API server takes it); `None` for a delete or
    /// an eviction.
    pub fn patch_to_send(&self) -> Option<Patch> {
        let Change::Patch(patch) = &self.change else {
            return None;
        };
        let Precondition::ResourceVersion(rv) = &self.precondition else {
            return Some(patch.clone());
        };
        let with_version = |body: &Value| {
            let mut body = body.clone();
            if let Some(object) = body.as_object_mut() {
                let metadata = object
                    .entry("metadata")
                    .or_insert_with(|| Value::Object(Default::default()));
                if let Some(metadata) = metadata.as_object_mut() {
                    metadata.insert("resourceVersion".into(), Value::String(rv.clone()));
                }
            }
            body
        };
        Some(match patch {
            Patch::Strategic(body) => Patch::Strategic(with_version(body)),
            Patch::Merge(body) => Patch::Merge(with_version(body)),
            // A JSON patch states its own `test` operations.
            Patch::Json(body) => Patch::Json(body.clone()),
        })
    }

    /// The body sent: the created object, the patch of
    /// [`Write::patch_to_send`], or `null` for a delete.
    pub fn body_to_send(&self) -> Value {
        if let Change::Create(object) = &self.change {
            return object.clone();
        }
        self.patch_to_send()
            .map(|p| p.body().clone())
            .unwrap_or(Value::Null)
    }
}

/// Serializes a write as the body it sends: the documents of the plans
/// (`-o json`) show the exact patch under the names they always had.
pub fn serialize_body<S: Serializer>(write: &Write, serializer: S) -> Result<S::Ok, S::Error> {
    // Written as it stands where nothing is added to it: a plan of 25,000
    // restarts copied each patch twice only to print it.
    match (&write.change, &write.precondition) {
        (Change::Create(object), _) => object.serialize(serializer),
        (Change::Patch(patch), Precondition::None) => patch.body().serialize(serializer),
        _ => write.body_to_send().serialize(serializer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn namespace_write() -> Write {
        Write::patch(
            ObjectRef::cluster(ObjectKind::Namespace, "shop"),
            Patch::Merge(json!({"metadata": {"labels": {"istio.io/rev": "1-22-3"}}})),
            "move shop to 1-22-3",
        )
    }

    #[test]
    fn a_resource_version_precondition_travels_in_the_merge_patch_body() {
        let write = namespace_write().at_version("41");
        assert_eq!(
            write.body_to_send(),
            json!({"metadata": {"labels": {"istio.io/rev": "1-22-3"}, "resourceVersion": "41"}})
        );
        assert_eq!(
            write.patch_to_send().unwrap().content_type(),
            "application/merge-patch+json"
        );
    }

    #[test]
    fn without_a_precondition_the_patch_is_sent_as_written() {
        let write = namespace_write();
        assert_eq!(
            write.body_to_send(),
            json!({"metadata": {"labels": {"istio.io/rev": "1-22-3"}}})
        );
        assert_eq!(
            namespace_write().at_version("").precondition,
            Precondition::None
        );
    }

    #[test]
    fn a_plan_document_shows_each_write_as_the_body_it_sends() {
        #[derive(Serialize)]
        struct Shown<'a>(#[serde(serialize_with = "serialize_body")] &'a Write);
        let shown = |write: &Write| serde_json::to_value(Shown(write)).unwrap();
        let delete = Write::delete(
            ObjectRef::namespaced(ObjectKind::Pod, "pay", "ledger-2"),
            "u-1",
            "OnDelete StatefulSet",
        );
        for write in [
            namespace_write(),
            namespace_write().at_version("41"),
            Write::create(
                ObjectRef::cluster(
                    ObjectKind::MutatingWebhookConfiguration,
                    "istio-revision-tag-canary",
                ),
                json!({"kind": "MutatingWebhookConfiguration", "metadata": {"name": "istio-revision-tag-canary"}}),
                "create tag canary",
            ),
            delete,
        ] {
            assert_eq!(shown(&write), write.body_to_send(), "{}", write.target);
        }
    }

    #[test]
    fn a_delete_carries_the_uid_it_was_planned_on() {
        let write = Write::delete(
            ObjectRef::namespaced(ObjectKind::Pod, "pay", "ledger-2"),
            "u-1",
            "OnDelete StatefulSet",
        );
        assert_eq!(write.precondition, Precondition::Uid("u-1".into()));
        assert_eq!(write.patch_to_send(), None);
        assert_eq!(write.target.to_string(), "pay/pod/ledger-2");
    }
}
