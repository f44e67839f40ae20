//! Sending one [`Write`], and what happens on a conflict.
//!
//! ```text
//! Write ─► api POST/PATCH/DELETE (429/5xx retried by the API layer's policy)
//!   409 ─► GET the object ─► replan(fresh) ─► Send(new write) ─► PATCH again   (bounded)
//!                                          ├► Landed         ─► the object already shows it
//!                                          ├► Unneeded(why)  ─► someone else's change made it moot
//!                                          └► Fail(why)
//! ```
//!
//! The re-plan is the verb's own pure rule applied to the object as it is
//! now, so another writer's change is kept rather than overwritten, and a
//! write that the server stored before failing (a 5xx after the store) is
//! recognised on the re-read instead of being made twice.

use anyhow::Context as _;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use serde_json::Value;

use crate::api::{ApiClient, Eviction, PatchBody};
use crate::error::is_conflict;
use crate::snapshot::Rollout;
use crate::snapshot::gateway_api::Gateway as GatewayApiGateway;
use crate::write::{Change, ObjectKind, ObjectRef, Patch, Precondition, Write};

/// What the server answered to a write.
#[derive(Clone, Debug, PartialEq)]
pub enum Sent {
    /// The object after the patch (or as the server would store it, in a
    /// server dry run).
    Patched(Value),
    /// The object as created (or as the server would store it).
    Created(Value),
    Deleted,
    /// A delete (or an eviction) found nothing to delete.
    AlreadyGone,
    /// An eviction was accepted (in a server dry run: would be).
    Evicted,
    /// An eviction a PodDisruptionBudget refused: the server's sentence.
    EvictionRefused(String),
}

/// Send `write` once.
pub async fn send(api: &ApiClient, write: &Write) -> anyhow::Result<Sent> {
    let target = &write.target;
    let namespace = target.namespace.as_deref();
    let name = target.name.as_str();
    match &write.change {
        Change::Create(object) => {
            let created = match target.kind {
                ObjectKind::Service => to_value(api.create::<Service>(namespace, object).await?),
                ObjectKind::MutatingWebhookConfiguration => to_value(
                    api.create::<MutatingWebhookConfiguration>(None, object)
                        .await?,
                ),
                other => anyhow::bail!(
                    "creating a {} is not something this plugin does",
                    other.resource()
                ),
            }?;
            Ok(Sent::Created(created))
        }
        Change::Patch(_) => {
            let body = match write.patch_to_send() {
                Some(Patch::Strategic(v)) => PatchBody::Strategic(v),
                Some(Patch::Merge(v)) => PatchBody::Merge(v),
                Some(Patch::Json(v)) => PatchBody::Json(v),
                None => unreachable!("a patch write has a patch"),
            };
            let object = match target.kind {
                ObjectKind::Namespace => to_value(api.patch::<Namespace>(None, name, &body).await?),
                ObjectKind::Service => {
                    to_value(api.patch::<Service>(namespace, name, &body).await?)
                }
                ObjectKind::Deployment => {
                    to_value(api.patch::<Deployment>(namespace, name, &body).await?)
                }
                ObjectKind::StatefulSet => {
                    to_value(api.patch::<StatefulSet>(namespace, name, &body).await?)
                }
                ObjectKind::DaemonSet => {
                    to_value(api.patch::<DaemonSet>(namespace, name, &body).await?)
                }
                ObjectKind::Pod => to_value(api.patch::<Pod>(namespace, name, &body).await?),
                ObjectKind::Rollout => {
                    to_value(api.patch::<Rollout>(namespace, name, &body).await?)
                }
                ObjectKind::MutatingWebhookConfiguration => to_value(
                    api.patch::<MutatingWebhookConfiguration>(None, name, &body)
                        .await?,
                ),
                ObjectKind::Gateway => to_value(
                    api.patch::<GatewayApiGateway>(namespace, name, &body)
                        .await?,
                ),
                ObjectKind::Node => to_value(api.patch::<Node>(None, name, &body).await?),
            }?;
            Ok(Sent::Patched(object))
        }
        Change::Delete => {
            let uid = match &write.precondition {
                Precondition::Uid(uid) => Some(uid.as_str()),
                _ => None,
            };
            let deleted = match target.kind {
                ObjectKind::Pod => api.delete::<Pod>(namespace, name, uid).await?,
                ObjectKind::Service => api.delete::<Service>(namespace, name, uid).await?,
                ObjectKind::MutatingWebhookConfiguration => {
                    api.delete::<MutatingWebhookConfiguration>(None, name, uid)
                        .await?
                }
                other => anyhow::bail!(
                    "deleting a {} is not something this plugin does",
                    other.resource()
                ),
            };
            Ok(if deleted {
                Sent::Deleted
            } else {
                Sent::AlreadyGone
            })
        }
        Change::Evict => {
            let uid = match &write.precondition {
                Precondition::Uid(uid) => Some(uid.as_str()),
                _ => None,
            };
            let (ObjectKind::Pod, Some(namespace)) = (target.kind, namespace) else {
                anyhow::bail!("only pods are evicted, not {target}");
            };
            Ok(match api.evict(namespace, name, uid).await? {
                Eviction::Evicted => Sent::Evicted,
                Eviction::Gone => Sent::AlreadyGone,
                Eviction::Refused(why) => Sent::EvictionRefused(why),
            })
        }
    }
}

/// GET the target as it is now; `None` when it does not exist.
pub async fn read(api: &ApiClient, target: &ObjectRef) -> anyhow::Result<Option<Value>> {
    let namespace = target.namespace.as_deref();
    let name = target.name.as_str();
    let object = match target.kind {
        ObjectKind::Namespace => api.get::<Namespace>(None, name).await?.map(to_value),
        ObjectKind::Service => api.get::<Service>(namespace, name).await?.map(to_value),
        ObjectKind::Deployment => api.get::<Deployment>(namespace, name).await?.map(to_value),
        ObjectKind::StatefulSet => api.get::<StatefulSet>(namespace, name).await?.map(to_value),
        ObjectKind::DaemonSet => api.get::<DaemonSet>(namespace, name).await?.map(to_value),
        ObjectKind::Pod => api.get::<Pod>(namespace, name).await?.map(to_value),
        ObjectKind::Rollout => api.get::<Rollout>(namespace, name).await?.map(to_value),
        ObjectKind::MutatingWebhookConfiguration => api
            .get::<MutatingWebhookConfiguration>(None, name)
            .await?
            .map(to_value),
        ObjectKind::Gateway => api
            .get::<GatewayApiGateway>(namespace, name)
            .await?
            .map(to_value),
        ObjectKind::Node => api.get::<Node>(None, name).await?.map(to_value),
    };
    object.transpose()
}

fn to_value<K: serde::Serialize>(object: K) -> anyhow::Result<Value> {
    serde_json::to_value(object).context("reading the server's answer")
}

/// What the verb's rule says of the object as it is after a conflict.
#[derive(Clone, Debug, PartialEq)]
pub enum Replan<T> {
    /// Send this write instead (planned on the fresh object).
    Send(Write, T),
    /// The object already shows the write's effect: count it as applied.
    Landed(T),
    /// Nothing to write any more: why.
    Unneeded(String),
    /// Give up on this object: why.
    Fail(String),
}

/// How applying one write (with its re-plans) ended.
#[derive(Debug)]
pub enum Applied<T> {
    /// Written (`object` is the server's answer, or the fresh read for
    /// [`Replan::Landed`]); `context` is that of the last write sent.
    Written {
        sent: Sent,
        context: T,
        conflicts: u32,
    },
    Unneeded {
        why: String,
        conflicts: u32,
    },
    Failed {
        error: anyhow::Error,
        conflicts: u32,
    },
}

impl<T> Applied<T> {
    pub fn conflicts(&self) -> u32 {
        match self {
            Applied::Written { conflicts, .. }
            | Applied::Unneeded { conflicts, .. }
            | Applied::Failed { conflicts, .. } => *conflicts,
        }
    }
}

/// Send `write`; on each 409 read the object again and let `replan` decide,
/// at most `max_conflicts` times.
pub async fn apply<T>(
    api: &ApiClient,
    write: Write,
    context: T,
    max_conflicts: u32,
    mut replan: impl FnMut(Option<&Value>) -> Replan<T>,
) -> Applied<T> {
    let mut write = write;
    let mut context = context;
    let mut conflicts = 0;
    loop {
        match send(api, &write).await {
            Ok(sent) => {
                return Applied::Written {
                    sent,
                    context,
                    conflicts,
                };
            }
            Err(error) if is_conflict(&error) && conflicts < max_conflicts => {
                conflicts += 1;
                tracing::info!(target = %write.target, conflicts, "409: reading it again");
                let fresh = match read(api, &write.target).await {
                    Ok(fresh) => fresh,
                    Err(error) => return Applied::Failed { error, conflicts },
                };
                match replan(fresh.as_ref()) {
                    Replan::Send(again, again_context) => {
                        write = again;
                        context = again_context;
                    }
                    Replan::Landed(landed) => {
                        return Applied::Written {
                            sent: Sent::Patched(fresh.unwrap_or(Value::Null)),
                            context: landed,
                            conflicts,
                        };
                    }
                    Replan::Unneeded(why) => return Applied::Unneeded { why, conflicts },
                    Replan::Fail(why) => {
                        return Applied::Failed {
                            error: anyhow::anyhow!(why),
                            conflicts,
                        };
                    }
                }
            }
            Err(error) if is_conflict(&error) => {
                let error = error.context(format!(
                    "{} still conflicted after {conflicts} fresh reads: someone keeps changing it; try again later",
                    write.target
                ));
                return Applied::Failed { error, conflicts };
            }
            Err(error) => return Applied::Failed { error, conflicts },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::{reply, replying, status_body};
    use serde_json::json;

    fn namespace_write(rv: &str) -> Write {
        Write::patch(
            ObjectRef::cluster(ObjectKind::Namespace, "shop"),
            Patch::Merge(json!({"metadata": {"labels": {"istio.io/rev": "1-22-3"}}})),
            "move",
        )
        .at_version(rv)
    }

    fn namespace(rv: &str, rev: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "shop", "resourceVersion": rv, "labels": {"istio.io/rev": rev}}})
    }

    #[tokio::test]
    async fn a_conflict_is_read_again_and_the_replanned_write_is_sent() {
        let (api, seen) = replying(|method, _, _, call| match (method, call) {
            ("PATCH", 1) => reply(
                409,
                status_body(409, "Conflict", "the object has been modified"),
            ),
            ("GET", _) => reply(200, namespace("7", "1-21-2")),
            ("PATCH", _) => reply(200, namespace("8", "1-22-3")),
            _ => reply(500, status_body(500, "InternalError", "unexpected")),
        });
        let mut replans = Vec::new();
        let applied = apply(&api, namespace_write("6"), "first", 3, |fresh| {
            let rv = fresh.unwrap()["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_string();
            replans.push(rv.clone());
            Replan::Send(namespace_write(&rv), "second")
        })
        .await;
        let Applied::Written {
            sent: Sent::Patched(object),
            context,
            conflicts,
        } = applied
        else {
            panic!("written: {applied:?}");
        };
        assert_eq!((context, conflicts), ("second", 1));
        assert_eq!(object["metadata"]["resourceVersion"], "8");
        assert_eq!(replans, ["7"]);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(
            seen[1].starts_with("GET /api/v1/namespaces/shop"),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn a_write_the_fresh_object_already_shows_counts_as_landed_and_is_not_sent_again() {
        let (api, seen) = replying(|method, _, _, _| match method {
            "PATCH" => reply(409, status_body(409, "Conflict", "modified")),
            _ => reply(200, namespace("9", "1-22-3")),
        });
        let applied = apply(&api, namespace_write("6"), (), 3, |_| Replan::Landed(())).await;
        assert!(
            matches!(applied, Applied::Written { conflicts: 1, .. }),
            "{applied:?}"
        );
        assert_eq!(seen.lock().unwrap().len(), 2, "one PATCH, one GET");
    }

    #[tokio::test]
    async fn a_writer_that_never_stops_ends_in_a_failure_after_the_bound() {
        let (api, seen) = replying(|method, _, _, _| match method {
            "PATCH" => reply(409, status_body(409, "Conflict", "modified")),
            _ => reply(200, namespace("9", "1-21-2")),
        });
        let applied = apply(&api, namespace_write("6"), (), 2, |_| {
            Replan::Send(namespace_write("9"), ())
        })
        .await;
        let Applied::Failed { error, conflicts } = applied else {
            panic!("failed: {applied:?}");
        };
        assert_eq!(conflicts, 2);
        assert!(
            format!("{error:#}").contains("namespace/shop still conflicted after 2 fresh reads"),
            "{error:#}"
        );
        // PATCH, GET, PATCH, GET, PATCH.
        assert_eq!(seen.lock().unwrap().len(), 5);
    }

    #[tokio::test]
    async fn server_errors_are_retried_by_the_api_layer_before_the_engine_sees_them() {
        let (api, seen) = replying(|_, _, _, call| {
            if call == 1 {
                reply(503, status_body(503, "ServiceUnavailable", "try later"))
            } else {
                reply(200, namespace("8", "1-22-3"))
            }
        });
        let api = api.with_retry_policy(crate::api::RetryPolicy {
            base_delay: std::time::Duration::from_millis(1),
            ..Default::default()
        });
        let applied = apply(&api, namespace_write("6"), (), 3, |_| {
            Replan::Fail("no conflict expected".into())
        })
        .await;
        assert!(
            matches!(applied, Applied::Written { conflicts: 0, .. }),
            "{applied:?}"
        );
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_pod_delete_carries_its_uid_and_a_missing_pod_is_already_gone() {
        let (api, seen) = replying(|_, _, _, _| reply(404, status_body(404, "NotFound", "gone")));
        let write = Write::delete(
            ObjectRef::namespaced(ObjectKind::Pod, "pay", "db-1"),
            "u-7",
            "x",
        );
        assert_eq!(send(&api, &write).await.unwrap(), Sent::AlreadyGone);
        assert!(seen.lock().unwrap()[0].starts_with("DELETE /api/v1/namespaces/pay/pods/db-1"));
    }
}
