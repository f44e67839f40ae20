//! Applying a [`TagPlan`]: its writes one after the other, in the plan's
//! order, stopping at the first that fails.
//!
//! ```text
//! plan.writes ─► apply(write) ─► written | rehearsed (dryRun=All)
//!                  409 ─► GET ─► tags::landed(write, fresh)? ─► already written (not sent again)
//!                                                      else ─► failed: changed by someone else
//! a failure ─► the later writes are not sent
//! ```
//!
//! The order carries meaning: a `default` tag's webhooks are created before
//! the default revision's own are made never to match (and put back before
//! the tag's are deleted on undo), so no moment passes without an injector
//! for `istio-injection=enabled` namespaces. A write never overwrites
//! another writer's change: every patch carries the resourceVersion it was
//! planned on, every delete the uid, and after a conflict the only thing
//! accepted is the object already showing this very write.

use super::apply::{Applied, Replan, Sent, apply};
use crate::api::{ApiClient, WriteMode};
use crate::mesh::tags::{TagPlan, TagWriteResult, WriteOutcome, change_name, landed};
use crate::write::{Change, Write};

/// 409s one write may answer before the run gives up on it (each is a
/// fresh read).
const MAX_CONFLICTS: u32 = 3;

/// Send every write of `plan`, in order; one result per write.
pub async fn apply_tag(writer: &ApiClient, plan: &TagPlan) -> Vec<TagWriteResult> {
    let rehearsal = writer.write_mode() == WriteMode::ServerDryRun;
    let mut results = Vec::new();
    let mut failed = false;
    for write in &plan.writes {
        let result = |outcome, detail: Option<String>| TagWriteResult {
            target: write.target.clone(),
            change: change_name(write),
            outcome,
            detail,
        };
        if failed {
            results.push(result(WriteOutcome::NotSent, None));
            continue;
        }
        let (outcome, detail) = apply_one(writer, write, rehearsal).await;
        failed = outcome == WriteOutcome::Failed;
        tracing::info!(target = %write.target, outcome = outcome.as_str(), "tag write");
        results.push(result(outcome, detail));
    }
    results
}

async fn apply_one(
    writer: &ApiClient,
    write: &Write,
    rehearsal: bool,
) -> (WriteOutcome, Option<String>) {
    let is_delete = matches!(write.change, Change::Delete);
    let mut landed_on_reread = false;
    let applied = apply(writer, write.clone(), (), MAX_CONFLICTS, |fresh| match fresh {
        None if is_delete => Replan::Unneeded("already gone".to_string()),
        None => Replan::Fail(format!("{} was deleted meanwhile", write.target)),
        Some(fresh) if landed(write, fresh) => {
            landed_on_reread = true;
            Replan::Landed(())
        }
        Some(_) if is_delete => Replan::Fail(format!(
            "{} was replaced by another object of the same name since it was read; run the command again",
            write.target
        )),
        Some(_) => Replan::Fail(format!(
            "{} was changed by someone else since it was read; run the command again to plan on it as it is now",
            write.target
        )),
    })
    .await;
    match applied {
        Applied::Written { .. } if landed_on_reread => (
            WriteOutcome::Landed,
            Some("the object already shows this write".to_string()),
        ),
        Applied::Written {
            sent: Sent::AlreadyGone,
            ..
        } => (WriteOutcome::AlreadyGone, None),
        Applied::Written { .. } if rehearsal => (
            WriteOutcome::Rehearsed,
            Some("accepted by the server (dryRun=All)".to_string()),
        ),
        Applied::Written { .. } => (WriteOutcome::Written, None),
        Applied::Unneeded { why, .. } => (WriteOutcome::AlreadyGone, Some(why)),
        Applied::Failed { error, .. } => (WriteOutcome::Failed, Some(format!("{error:#}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::{reply, replying, status_body};
    use crate::mesh::fixtures::{ClusterFixture, canary_fixture};
    use crate::mesh::tags::{TagOperation, TagRequest, plan};
    use serde_json::json;

    fn set(tag: &str, revision: &str) -> TagRequest {
        TagRequest {
            tag: tag.into(),
            operation: TagOperation::Set {
                revision: revision.into(),
            },
            force: false,
        }
    }

    #[tokio::test]
    async fn a_move_stored_before_its_answer_failed_is_found_on_the_re_read_and_not_sent_again() {
        let moved = plan(&canary_fixture().build(), &set("prod-stable", "1-22-3")).unwrap();
        let stored = json!({
            "metadata": {
                "name": "istio-revision-tag-prod-stable",
                "labels": {"istio.io/rev": "1-22-3", "istio.io/tag": "prod-stable"},
                "annotations": {"mesh-upgrade.io/previous-revision": "{\"revision\":\"1-21-2\"}"},
            },
            "webhooks": moved.writes[0].body_to_send()["webhooks"].clone(),
        });
        let (api, seen) = replying(move |method, _, _, _| match method {
            // The retry after a 500 that was stored: its resourceVersion is old.
            "PATCH" => reply(
                409,
                status_body(409, "Conflict", "the object has been modified"),
            ),
            _ => reply(200, stored.clone()),
        });
        let results = apply_tag(&api, &moved).await;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].outcome, WriteOutcome::Landed, "{results:?}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "one PATCH, one GET: {seen:?}");
    }

    #[tokio::test]
    async fn a_create_stored_before_its_answer_failed_is_found_on_the_re_read() {
        let snapshot = ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .build();
        let created = plan(&snapshot, &set("prod-next", "1-22-3")).unwrap();
        let stored = created.writes[0].body_to_send();
        let (api, seen) = replying(move |method, _, _, _| match method {
            "POST" => reply(409, status_body(409, "AlreadyExists", "already exists")),
            _ => reply(200, stored.clone()),
        });
        let results = apply_tag(&api, &created).await;
        assert_eq!(results[0].outcome, WriteOutcome::Landed, "{results:?}");
        assert!(seen.lock().unwrap()[0].starts_with(
            "POST /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations?"
        ));
    }

    #[tokio::test]
    async fn a_write_that_fails_stops_the_ones_after_it() {
        let snapshot = ClusterFixture::new()
            .default_revision_install("default", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .build();
        let moved = plan(&snapshot, &set("default", "1-22-3")).unwrap();
        assert_eq!(moved.writes.len(), 2, "create the tag, then deactivate");
        let (api, seen) = replying(|_, _, _, _| {
            reply(
                403,
                status_body(
                    403,
                    "Forbidden",
                    "cannot create mutatingwebhookconfigurations",
                ),
            )
        });
        let results = apply_tag(&api, &moved).await;
        let outcomes: Vec<WriteOutcome> = results.iter().map(|r| r.outcome).collect();
        assert_eq!(outcomes, [WriteOutcome::Failed, WriteOutcome::NotSent]);
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "the default revision's webhooks were never touched"
        );
    }

    #[tokio::test]
    async fn a_move_someone_else_changed_meanwhile_fails_without_overwriting_it() {
        let moved = plan(&canary_fixture().build(), &set("prod-stable", "1-22-3")).unwrap();
        let (api, seen) = replying(|method, _, _, _| match method {
            "PATCH" => reply(
                409,
                status_body(409, "Conflict", "the object has been modified"),
            ),
            _ => reply(
                200,
                json!({"metadata": {"name": "istio-revision-tag-prod-stable", "labels": {"istio.io/rev": "1-20-0"}}}),
            ),
        });
        let results = apply_tag(&api, &moved).await;
        assert_eq!(results[0].outcome, WriteOutcome::Failed);
        assert!(
            results[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("changed by someone else")),
            "{results:?}"
        );
        assert_eq!(seen.lock().unwrap().len(), 2);
    }
}
