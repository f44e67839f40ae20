//! ControllerRevisions: the template history of StatefulSets and DaemonSets.
//!
//! Each distinct pod template is one ControllerRevision `<owner>-<hash>`
//! whose `data` is the patch `kubectl rollout undo` applies to go back to
//! it (`{"spec": {"template": {..., "$patch": "replace"}}}`) and whose
//! `revision` numbers the history (`kubectl rollout history`). Writing an
//! old template back reuses its revision object and gives it the next
//! number, as the real controllers do.

use super::util::At;
use serde_json::{Value, json};

use super::state::ControllerState;
use super::util::{self, i64_at, name_of, template_hash};
use crate::resources::kinds;
use crate::store::Obj;
use crate::world::{World, WriteOptions};

pub const HASH_LABEL: &str = "controller-revision-hash";

/// The owner's revisions, oldest first, and the one of its current template.
pub struct Revisions {
    pub all: Vec<Obj>,
    pub update: Obj,
}

/// The name is taken by a revision of another template: the owner's
/// `status.collisionCount` must go up.
pub struct Collision;

pub fn number(revision: &Value) -> i64 {
    i64_at(revision, "/revision").unwrap_or(0)
}

/// The pod template a revision records.
pub fn template_of(revision: &Value) -> Value {
    let mut template = revision
        .at("/data/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(map) = template.as_object_mut() {
        map.remove("$patch");
    }
    template
}

/// The hash part of a revision's name (its `controller-revision-hash` label).
pub fn hash_of(revision: &Value) -> String {
    util::label(revision, HASH_LABEL).unwrap_or("").to_string()
}

fn data_for(template: &Value) -> Value {
    let mut template = template.clone();
    if let Some(map) = template.as_object_mut() {
        map.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// Finds or makes the revision of `owner`'s current template.
pub fn sync(
    world: &mut World,
    st: &ControllerState,
    owner: &Value,
) -> Result<Revisions, Collision> {
    let mut all: Vec<Obj> = st
        .revisions_by_owner
        .dependents(util::uid_of(owner))
        .iter()
        .filter_map(|k| util::get(world, kinds::controllerrevisions(), k))
        .collect();
    all.sort_by_key(|r| number(r));
    let template = owner
        .at("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let data = data_for(&template);
    let latest = all.last().map(|r| number(r)).unwrap_or(0);
    if let Some(i) = all.iter().rposition(|r| r.get("data") == Some(&data)) {
        if number(&all[i]) < latest {
            let mut next = (*all[i]).clone();
            next["revision"] = json!(latest + 1);
            if let Some(updated) = util::write_object(world, kinds::controllerrevisions(), next) {
                all.remove(i);
                all.push(updated);
            }
        } else {
            let found = all.remove(i);
            all.push(found);
        }
        let update = all.last().cloned().expect("just pushed");
        return Ok(Revisions { all, update });
    }
    let hash = template_hash(&template, i64_at(owner, "/status/collisionCount"));
    let mut labels = template
        .at("/metadata/labels")
        .filter(|l| l.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    labels[HASH_LABEL] = json!(hash);
    labels["controller.kubernetes.io/hash"] = json!(hash);
    let revision = json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": format!("{}-{hash}", name_of(owner)),
            "namespace": util::namespace_of(owner),
            "labels": labels,
            "ownerReferences": [util::controller_ref(owner)],
        },
        "data": data,
        "revision": latest + 1,
    });
    match world.create(
        kinds::controllerrevisions(),
        revision,
        &WriteOptions::default(),
    ) {
        Ok(created) => {
            all.push(created.clone());
            Ok(Revisions {
                all,
                update: created,
            })
        }
        Err(e) if e.reason == "AlreadyExists" => Err(Collision),
        Err(e) => {
            tracing::debug!(owner = name_of(owner), error = %e, "creating a ControllerRevision failed");
            Err(Collision)
        }
    }
}

/// Deletes the oldest revisions no pod uses beyond `revisionHistoryLimit`.
pub fn cleanup(world: &mut World, owner: &Value, revisions: &Revisions, live: &[&str]) {
    let limit = i64_at(owner, "/spec/revisionHistoryLimit")
        .unwrap_or(10)
        .max(0) as usize;
    let update = name_of(&revisions.update);
    let history: Vec<&Obj> = revisions
        .all
        .iter()
        .filter(|r| {
            name_of(r) != update
                && !live.contains(&name_of(r))
                && !live.contains(&hash_of(r).as_str())
        })
        .collect();
    if history.len() <= limit {
        return;
    }
    for r in &history[..history.len() - limit] {
        let _ = world.delete(
            kinds::controllerrevisions(),
            util::namespace_of(r),
            name_of(r),
            &WriteOptions::default(),
        );
    }
}
