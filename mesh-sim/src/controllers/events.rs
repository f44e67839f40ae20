//! Kubernetes Events (`v1` Event) the controllers write: `ScalingReplicaSet`,
//! `SuccessfulCreate`, `FailedCreate`, `SuccessfulDelete` and the like.
//!
//! Events are aggregated per object and reason, as the API server's event
//! correlator does for repeats: the same object and reason update one
//! Event (count, last timestamp, latest message) instead of adding one per
//! pod, which keeps a 50,000-pod cluster from carrying 50,000 more objects.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::util::{self, fmt_time, name_of, namespace_of, short_hash, uid_of};
use crate::resources::kinds;
use crate::world::{World, WriteOptions};

/// Records an event about `involved` (best effort: a namespace being
/// deleted, say, just means no event).
pub fn record(
    world: &mut World,
    involved: &Value,
    event_type: &str,
    reason: &str,
    message: &str,
    component: &str,
    now: DateTime<Utc>,
) {
    let namespace = match namespace_of(involved) {
        "" => "default",
        ns => ns,
    };
    let name = format!(
        "{}.{}",
        name_of(involved),
        short_hash(&[uid_of(involved), reason], 10)
    );
    let now_s = fmt_time(now);
    let opts = WriteOptions::default();
    if let Some(existing) = world.store.get(kinds::events(), namespace, &name) {
        let mut next = (*existing).clone();
        let count = util::i64_at(&existing, "/count").unwrap_or(1);
        next["count"] = json!(count + 1);
        next["lastTimestamp"] = json!(now_s);
        next["message"] = json!(message);
        next["type"] = json!(event_type);
        let _ = world.update(kinds::events(), next, &opts);
        return;
    }
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion").cloned().unwrap_or(Value::Null),
            "kind": involved.get("kind").cloned().unwrap_or(Value::Null),
            "name": name_of(involved),
            "namespace": namespace_of(involved),
            "uid": uid_of(involved),
            "resourceVersion": util::str_at(involved, "/metadata/resourceVersion").unwrap_or(""),
        },
        "reason": reason,
        "message": message,
        "type": event_type,
        "count": 1,
        "firstTimestamp": now_s,
        "lastTimestamp": now_s,
        "eventTime": null,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": "",
    });
    let _ = world.create(kinds::events(), event, &opts);
}
