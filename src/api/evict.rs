//! Evictions: `POST /api/v1/namespaces/<ns>/pods/<name>/eviction`, the
//! request `kubectl drain` makes, so PodDisruptionBudgets decide.
//!
//! ```text
//! 201 ─► Evicted           404 ─► Gone (nothing left to evict)
//! 429 with a DisruptionBudget cause ─► Refused(the server's sentence): not
//!     retried here (the caller waits for the budget), unlike a throttling 429
//! ```
//!
//! The body is a `policy/v1` Eviction whose `deleteOptions` carry the pod's
//! uid as a precondition (a replacement of the same name is never evicted by
//! mistake) and, in a server dry run, `dryRun: [All]`. kube-core's own
//! eviction request writes `delete_options`, which the API server ignores, so
//! the request is built here. Client dry-run mode refuses to send it, as for
//! every write.

use http::Request;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::ApiClient;
use super::classify::Action;
use super::request::{WriteMode, is_disruption_budget_refusal};

/// How an eviction ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// The API server accepted it (in a server dry run: would accept it).
    Evicted,
    /// The pod was already gone.
    Gone,
    /// A PodDisruptionBudget allows no disruption now: the server's
    /// sentence, with its cause ("The disruption budget web needs 2 healthy
    /// pods and has 2 currently").
    Refused(String),
}

impl ApiClient {
    /// Evict pod `namespace/name`, only while it is `uid` (when given).
    pub async fn evict(
        &self,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> anyhow::Result<Eviction> {
        let action = Action::subresource::<Pod>("create", Some(namespace), name, "eviction");
        self.guard_write(&action)?;
        let dry_run = self.write_mode == WriteMode::ServerDryRun;
        let mut delete_options = json!({});
        if let Some(uid) = uid {
            delete_options["preconditions"] = json!({"uid": uid});
        }
        if dry_run {
            delete_options["dryRun"] = json!(["All"]);
        }
        let body = json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            "deleteOptions": delete_options,
        });
        let body =
            serde_json::to_vec(&body).map_err(|e| anyhow::anyhow!("{}: {e}", action.describe()))?;
        let query = if dry_run { "?dryRun=All" } else { "" };
        let uri = format!("/api/v1/namespaces/{namespace}/pods/{name}/eviction{query}");
        let build = || -> Result<Request<Vec<u8>>, kube::Error> {
            Request::post(uri.as_str())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .map_err(kube::Error::HttpError)
        };
        match self.send::<serde_json::Value>(&action, build).await {
            Ok(_) => Ok(Eviction::Evicted),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(Eviction::Gone),
            Err(kube::Error::Api(status))
                if status.code == 429 && is_disruption_budget_refusal(&status) =>
            {
                let causes: Vec<&str> = status
                    .details
                    .iter()
                    .flat_map(|d| d.causes.iter())
                    .map(|c| c.message.as_str())
                    .filter(|m| !m.is_empty())
                    .collect();
                let mut sentence = status.message.trim_end_matches('.').to_string();
                if !causes.is_empty() {
                    sentence.push_str(": ");
                    sentence.push_str(&causes.join("; "));
                }
                Ok(Eviction::Refused(sentence))
            }
            Err(err) => Err(self.classify(err, &action)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::{reply, replying, status_body};

    #[tokio::test]
    async fn an_eviction_carries_the_uid_and_a_budgets_refusal_is_an_answer_not_retried() {
        let (api, seen) = replying(|_, _, _, _| {
            let mut body = status_body(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
            );
            body["details"] = json!({"causes": [{"reason": "DisruptionBudget",
                "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]});
            reply(429, body)
        });
        let answer = api.evict("shop", "web-1", Some("u-1")).await.unwrap();
        assert_eq!(
            answer,
            Eviction::Refused(
                "Cannot evict pod as it would violate the pod's disruption budget: The disruption budget web needs 2 healthy pods and has 2 currently".into()
            )
        );
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "not retried: {seen:?}");
        assert!(
            seen[0].starts_with("POST /api/v1/namespaces/shop/pods/web-1/eviction"),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn a_missing_pod_is_gone_and_a_server_dry_run_says_so() {
        let (api, seen) = replying(|_, _, _, _| reply(404, status_body(404, "NotFound", "gone")));
        let api = api.with_write_mode(WriteMode::ServerDryRun);
        assert_eq!(
            api.evict("shop", "web-1", None).await.unwrap(),
            Eviction::Gone
        );
        let seen = seen.lock().unwrap().clone();
        assert!(seen[0].contains("eviction?dryRun=All"), "{seen:?}");
    }

    #[tokio::test]
    async fn a_client_dry_run_never_sends_an_eviction() {
        let (api, seen) = replying(|_, _, _, _| reply(201, json!({})));
        let api = api.with_write_mode(WriteMode::ClientDryRun);
        assert!(api.evict("shop", "web-1", None).await.is_err());
        assert!(seen.lock().unwrap().is_empty());
    }
}
