//! Applying a [`TagPlan`]: its writes one after the other, in the plan's
//! order, stopping at the first that fails.
//!
//! ```text
//! plan.writes ─► apply(write) ─► written | rehearsed (dryRun=All)
//!                  409 ─► GET ─► tags::landed(write, fresh)? ─► already written (not sent again)
//!                                                      else ─► failed: changed by someone else
//! a failure or Ctrl-C ─► the later writes are not sent
//! ```
//!
//! Every prefix of the plan is a safe state (that is what the order is
//! for), so a Ctrl-C between two writes stops there: the report names
//! what was written and the undo that takes it back.
//!
//! The order carries meaning: a `default` tag's webhooks are created before
//! the default revision's own are made never to match (and put back before
//! the tag's are deleted on undo), so no moment passes without an injector
//! for `istio-injection=enabled` namespaces. A write never overwrites
//! another writer's change: every patch carries the resourceVersion it was
//! planned on, every delete the uid, and after a conflict the only thing
//! accepted is the object already showing this very write.

use super::apply::{Applied, Replan, Sent, apply};
use super::batch::run_bounded;
use super::interrupt::Interrupts;
use crate::api::{ApiClient, WriteMode};
use crate::mesh::tags::{TagPlan, TagWriteResult, WriteOutcome, change_name, landed};
use crate::write::{Change, Write};

/// 409s one write may answer before the run gives up on it (each is a
/// fresh read).
const MAX_CONFLICTS: u32 = 3;

/// What [`apply_tag`] did: one result per planned write, in plan order.
#[derive(Debug)]
pub struct TagRun {
    pub results: Vec<TagWriteResult>,
    /// Ctrl-C was pressed while the writes ran (those not yet sent are
    /// `NotSent`).
    pub interrupted: bool,
}

/// Send every write of `plan`, one at a time in order, until one fails or
/// Ctrl-C is pressed; the writes after that are reported as not sent.
pub async fn apply_tag(writer: &ApiClient, plan: &TagPlan, interrupts: &Interrupts) -> TagRun {
    let rehearsal = writer.write_mode() == WriteMode::ServerDryRun;
    let batch = run_bounded(
        plan.writes.len(),
        1,
        interrupts,
        |index| {
            let write = &plan.writes[index];
            async move {
                let (outcome, detail) = apply_one(writer, write, rehearsal).await;
                tracing::info!(target = %write.target, outcome = outcome.as_str(), "tag write");
                (outcome, detail)
            }
        },
        |(outcome, _)| *outcome == WriteOutcome::Failed,
        |_, _, _| {},
    )
    .await;
    let results = plan
        .writes
        .iter()
        .zip(batch.results)
        .map(|(write, result)| {
            let (outcome, detail) = result.unwrap_or((WriteOutcome::NotSent, None));
            TagWriteResult {
                target: write.target.clone(),
                change: change_name(write),
                outcome,
                detail,
            }
        })
        .collect::<Vec<_>>();
    // Ctrl-C seen while the writes ran ends the run as interrupted, even
    // when every write had already been sent (as restart-sidecars does):
    // nothing that was to follow them (`--restart`) starts.
    let interrupted = batch.interrupted;
    TagRun {
        results,
        interrupted,
    }
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

    /// Moving `default` off a default install: create the tag, then make
    /// the install's own webhooks never match (two writes, in that order).
    fn default_tag_moved() -> TagPlan {
        let snapshot = ClusterFixture::new()
            .default_revision_install("default", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .build();
        let moved = plan(&snapshot, &set("default", "1-22-3")).unwrap();
        assert_eq!(moved.writes.len(), 2, "create the tag, then deactivate");
        moved
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
        let results = apply_tag(&api, &moved, &Interrupts::none()).await.results;
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
        let results = apply_tag(&api, &created, &Interrupts::none()).await.results;
        assert_eq!(results[0].outcome, WriteOutcome::Landed, "{results:?}");
        assert!(seen.lock().unwrap()[0].starts_with(
            "POST /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations?"
        ));
    }

    #[tokio::test]
    async fn a_write_that_fails_stops_the_ones_after_it() {
        let moved = default_tag_moved();
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
        let results = apply_tag(&api, &moved, &Interrupts::none()).await.results;
        let outcomes: Vec<WriteOutcome> = results.iter().map(|r| r.outcome).collect();
        assert_eq!(outcomes, [WriteOutcome::Failed, WriteOutcome::NotSent]);
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "the default revision's webhooks were never touched"
        );
    }

    #[tokio::test]
    async fn ctrl_c_during_a_write_lets_it_finish_and_sends_none_after_it() {
        let moved = default_tag_moved();
        let (interrupts, ctrl_c) = Interrupts::manual();
        let created = moved.writes[0].body_to_send();
        let (api, seen) = replying(move |_, _, _, _| {
            // Pressed while the first write is on the wire.
            ctrl_c.press();
            reply(201, created.clone())
        });
        let run = apply_tag(&api, &moved, &interrupts).await;
        let outcomes: Vec<WriteOutcome> = run.results.iter().map(|r| r.outcome).collect();
        assert_eq!(outcomes, [WriteOutcome::Written, WriteOutcome::NotSent]);
        assert!(run.interrupted);
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "nothing sent after the press"
        );
    }

    #[tokio::test]
    async fn ctrl_c_during_the_last_write_still_ends_the_run_as_interrupted() {
        let moved = plan(&canary_fixture().build(), &set("prod-stable", "1-22-3")).unwrap();
        assert_eq!(moved.writes.len(), 1);
        let (interrupts, ctrl_c) = Interrupts::manual();
        let answer = moved.writes[0].body_to_send();
        let (api, _) = replying(move |_, _, _, _| {
            ctrl_c.press();
            reply(200, answer.clone())
        });
        let run = apply_tag(&api, &moved, &interrupts).await;
        assert_eq!(run.results[0].outcome, WriteOutcome::Written);
        assert!(run.interrupted, "what follows the writes must not start");
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
        let results = apply_tag(&api, &moved, &Interrupts::none()).await.results;
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
