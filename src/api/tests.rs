//! Tests of the requests against an in-memory HTTP service: pagination,
//! retries, the dry-run guard and error sentences. (Kubeconfig loading, the
//! counting layer and the 403 user are tested beside their code.)

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde_json::{Value, json};

use super::fake::{Reply, Requests, reply, replying, status_body};
use super::*;
use crate::error::Error;
use crate::selector::LabelSelector;

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_millis(20),
    }
}

/// A client whose server answers with `handler(method, path, query, call
/// number)`, retrying fast.
fn fake_client(
    handler: impl Fn(&str, &str, &str, usize) -> Reply + Send + Sync + 'static,
) -> (ApiClient, Requests) {
    let (client, seen) = replying(handler);
    (client.with_retry_policy(fast_retries()), seen)
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop"}})
}

fn pod_list(names: &[&str], continue_token: Option<&str>) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PodList",
        "metadata": {"resourceVersion": "10", "continue": continue_token.unwrap_or("")},
        "items": names.iter().map(|n| pod(n)).collect::<Vec<_>>(),
    })
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

#[tokio::test]
async fn list_all_follows_continue_tokens_and_maps_each_page() {
    let (client, seen) = fake_client(|_, _, query, _| match query_param(query, "continue") {
        None => reply(200, pod_list(&["a", "b"], Some("page2"))),
        Some("page2") => reply(200, pod_list(&["c", "d"], Some("page3"))),
        Some(_) => reply(200, pod_list(&["e"], None)),
    });
    let client = client.with_page_size(2);
    let names = client
        .list_all::<Pod, String>(
            &ListScope::Namespace("shop".into()),
            &ListSelector::everything(),
            |p| p.metadata.name.filter(|n| n != "d"),
        )
        .await
        .unwrap();
    assert_eq!(names, ["a", "b", "c", "e"]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|r| r.starts_with("GET /api/v1/namespaces/shop/pods?") && r.contains("limit=2"))
    );
    assert_eq!(client.stats().count(RequestVerb::List), 3);
}

#[tokio::test]
async fn list_all_sends_the_label_selector_and_lists_all_namespaces_without_a_namespace() {
    let (client, seen) = fake_client(|_, _, _, _| reply(200, pod_list(&[], None)));
    let selector = ListSelector::labels(LabelSelector::parse("app=istiod").unwrap());
    client
        .list_all::<Pod, Pod>(&ListScope::All, &selector, Some)
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen[0].starts_with("GET /api/v1/pods?"), "{seen:?}");
    assert!(seen[0].contains("labelSelector=app%3Distiod"), "{seen:?}");
}

#[tokio::test]
async fn an_expired_continue_token_starts_the_list_over_once() {
    let (client, seen) =
        fake_client(
            |_, _, query, call| match (query_param(query, "continue"), call) {
                (None, 1) => reply(200, pod_list(&["a"], Some("old"))),
                (Some("old"), _) => reply(
                    410,
                    status_body(410, "Expired", "The provided continue parameter is too old"),
                ),
                (None, _) => reply(200, pod_list(&["a", "b"], None)),
                _ => reply(500, status_body(500, "InternalError", "unexpected")),
            },
        );
    let names = client
        .list_all::<Pod, String>(&ListScope::All, &ListSelector::everything(), |p| {
            p.metadata.name
        })
        .await
        .unwrap();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

/// A server of two pages that reports, on the channel it returns, when the
/// second page is asked for.
fn two_pages_reporting_the_second() -> (ApiClient, Requests, std::sync::mpsc::Receiver<()>) {
    let (asked, told) = std::sync::mpsc::channel::<()>();
    let asked = std::sync::Mutex::new(asked);
    let (client, seen) = fake_client(move |_, _, query, _| match query_param(query, "continue") {
        None => reply(200, pod_list(&["a", "b"], Some("page2"))),
        Some(_) => {
            let _ = asked.lock().unwrap().send(());
            reply(200, pod_list(&["c"], None))
        }
    });
    (client, seen, told)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_page_is_requested_while_the_current_one_is_decoded() {
    // Decoding the first page waits until the server has been asked for
    // the second, which happens only if that request went out before the
    // first page was decoded. (The wait is bounded so that a regression
    // fails instead of hanging.)
    let first_page_waits = |told: &std::sync::Mutex<std::sync::mpsc::Receiver<()>>| {
        told.lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(30))
            .expect("the second page was requested before the first was decoded");
    };

    let (client, seen, told) = two_pages_reporting_the_second();
    let told = std::sync::Mutex::new(told);
    let names = client
        .list_all::<Pod, String>(&ListScope::All, &ListSelector::everything(), |p| {
            if p.metadata.name.as_deref() == Some("a") {
                first_page_waits(&told);
            }
            p.metadata.name
        })
        .await
        .unwrap();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(seen.lock().unwrap().len(), 2);

    let (client, seen, told) = two_pages_reporting_the_second();
    let told = std::sync::Mutex::new(told);
    let (names, version) = client
        .list_pages::<Pod, String>(
            &ListScope::All,
            &ListSelector::everything(),
            crate::api::ListEncoding::Json,
            move |page, out| {
                let list: Value = serde_json::from_slice(page)?;
                let names = list["items"].as_array().into_iter().flatten();
                out.extend(names.map(|p| p["metadata"]["name"].as_str().unwrap().to_string()));
                if out.first().is_some_and(|name| name == "a") {
                    first_page_waits(&told);
                }
                Ok(())
            },
        )
        .await
        .unwrap();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(version, "10");
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(client.stats().count(RequestVerb::List), 2);
}

#[tokio::test]
async fn a_page_that_cannot_be_read_names_the_list_and_stops_it() {
    let (client, seen) = fake_client(|_, _, query, _| match query_param(query, "continue") {
        None => Reply {
            status: 200,
            headers: Vec::new(),
            body: r#"{"metadata":{"continue":"page2"},"items":[{"metadata":{"name":"a"}},"#
                .to_string(),
        },
        Some(_) => reply(200, pod_list(&["c"], None)),
    });
    let err = client
        .list_all::<Pod, Pod>(&ListScope::All, &ListSelector::everything(), Some)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("listing pods in all namespaces"),
        "{err:#}"
    );
    // The second page may have been asked for meanwhile, never a third.
    assert!(seen.lock().unwrap().len() <= 2);
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let (client, seen) = fake_client(|_, _, _, call| {
        if call <= 2 {
            reply(503, status_body(503, "ServiceUnavailable", "etcd is busy"))
        } else {
            reply(200, pod_list(&["a"], None))
        }
    });
    let names = client
        .list_all::<Pod, String>(&ListScope::All, &ListSelector::everything(), |p| {
            p.metadata.name
        })
        .await
        .unwrap();
    assert_eq!(names, ["a"]);
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(client.stats().retries(), 2);

    let (client, seen) =
        fake_client(|_, _, _, _| reply(500, status_body(500, "InternalError", "always broken")));
    let err = client
        .list_all::<Pod, Pod>(&ListScope::All, &ListSelector::everything(), Some)
        .await
        .unwrap_err();
    assert_eq!(
        seen.lock().unwrap().len(),
        4,
        "one attempt and three retries"
    );
    let message = format!("{err:#}");
    assert!(
        message.contains("listing pods in all namespaces") && message.contains("always broken"),
        "{message}"
    );
}

#[tokio::test]
async fn too_many_requests_waits_for_the_retry_after_header_even_with_a_plain_text_body() {
    let (client, seen) = fake_client(|_, _, _, call| {
        if call == 1 {
            Reply {
                status: 429,
                headers: vec![("Retry-After", "1".to_string())],
                body: "Too many requests, please try again later.".to_string(),
            }
        } else {
            reply(200, pod_list(&["a"], None))
        }
    });
    let started = Instant::now();
    client
        .list_all::<Pod, Pod>(&ListScope::All, &ListSelector::everything(), Some)
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);
    // The policy caps Retry-After at 20 ms in tests; the backoff alone would be 1 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(20),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_forbidden_list_names_the_kind_the_namespace_and_the_user() {
    let (client, _) = fake_client(|_, _, _, _| {
        reply(
            403,
            status_body(
                403,
                "Forbidden",
                "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"shop\"",
            ),
        )
    });
    let err = client
        .list_all::<Pod, Pod>(
            &ListScope::Namespace("shop".into()),
            &ListSelector::everything(),
            Some,
        )
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.starts_with("forbidden: cannot list pods in namespace shop as alice;"),
        "{message}"
    );
    assert!(matches!(
        err.downcast_ref::<Error>(),
        Some(Error::Forbidden { .. })
    ));
}

#[tokio::test]
async fn unauthorized_names_the_server_and_context() {
    let (client, _) =
        fake_client(|_, _, _, _| reply(401, status_body(401, "Unauthorized", "Unauthorized")));
    let err = client.server_version().await.unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "credentials rejected by https://127.0.0.1:1 for context test (401 Unauthorized): log in again or refresh the kubeconfig's token"
    );
}

#[tokio::test]
async fn a_bad_selector_rejected_by_the_server_is_an_invalid_selector_error() {
    let (client, _) = fake_client(|_, _, _, _| {
        reply(
            400,
            status_body(
                400,
                "BadRequest",
                "unable to parse requirement: found '=', expected: identifier",
            ),
        )
    });
    let selector = ListSelector::labels(LabelSelector::parse("app").unwrap());
    let err = client
        .list_all::<Deployment, Deployment>(&ListScope::All, &selector, Some)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<Error>(),
            Some(Error::InvalidSelector { .. })
        ),
        "{err:#}"
    );
}

#[tokio::test]
async fn a_conflict_is_a_typed_error_for_the_caller_to_re_read() {
    let (client, seen) = fake_client(|_, _, _, _| {
        reply(
            409,
            status_body(
                409,
                "Conflict",
                "the object has been modified; please apply your changes to the latest version",
            ),
        )
    });
    let err = client
        .patch::<Deployment>(
            Some("shop"),
            "cart",
            &PatchBody::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.downcast_ref::<Error>(), Some(Error::Conflict { .. })),
        "{err:#}"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a conflict is not retried blindly"
    );
}

#[tokio::test]
async fn client_dry_run_refuses_every_write_without_sending_it() {
    let (client, seen) = fake_client(|_, _, _, _| reply(200, json!({})));
    let client = client.with_write_mode(WriteMode::ClientDryRun);
    let err = client
        .patch::<Deployment>(Some("shop"), "cart", &PatchBody::Strategic(json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(err.downcast_ref::<Error>(), Some(Error::DryRunWrite { .. })),
        "{err:#}"
    );
    let err = client
        .delete::<Pod>(Some("shop"), "cart-0", None)
        .await
        .unwrap_err();
    assert!(
        matches!(err.downcast_ref::<Error>(), Some(Error::DryRunWrite { .. })),
        "{err:#}"
    );
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(client.stats().total(), 0);
}

#[tokio::test]
async fn server_dry_run_sends_writes_with_dry_run_all_and_the_field_manager() {
    let (client, seen) = fake_client(|method, _, _, _| match method {
        "PATCH" => reply(
            200,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart"}}),
        ),
        _ => reply(200, status_body(200, "", "")),
    });
    let client = client.with_write_mode(WriteMode::ServerDryRun);
    client
        .patch::<Deployment>(
            Some("shop"),
            "cart",
            &PatchBody::Json(json!([{"op": "add", "path": "/x", "value": 1}])),
        )
        .await
        .unwrap();
    client
        .delete::<Pod>(Some("shop"), "cart-0", Some("uid-1"))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].starts_with("PATCH /apis/apps/v1/namespaces/shop/deployments/cart?"),
        "{seen:?}"
    );
    assert!(
        seen[0].contains("dryRun=All") && seen[0].contains("fieldManager=kubectl-mesh-upgrade"),
        "{seen:?}"
    );
    assert!(
        seen[1].starts_with("DELETE /api/v1/namespaces/shop/pods/cart-0?")
            && seen[1].contains("dryRun=All"),
        "{seen:?}"
    );
    assert_eq!(client.stats().count(RequestVerb::Patch), 1);
    assert_eq!(client.stats().count(RequestVerb::Delete), 1);
}

#[tokio::test]
async fn get_returns_none_for_a_missing_object() {
    let (client, _) = fake_client(|_, _, _, _| {
        reply(
            404,
            status_body(404, "NotFound", "namespaces \"shop\" not found"),
        )
    });
    let namespace = client.get::<Namespace>(None, "shop").await.unwrap();
    assert!(namespace.is_none());
}

#[tokio::test]
async fn a_request_that_takes_longer_than_the_request_timeout_fails_with_a_sentence() {
    let service = tower::service_fn(|_req: Request<kube::client::Body>| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let target = ClusterTarget {
        context: "slow".into(),
        server: "https://127.0.0.1:2".into(),
    };
    let mut client = ApiClient::from_service(service, target, "default");
    client.request_timeout = Some(Duration::from_millis(50));
    let err = client.server_version().await.unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "the API server https://127.0.0.1:2 (context slow) did not answer within 50ms (--request-timeout)"
    );
}

#[tokio::test]
async fn a_create_is_always_a_dry_run_even_in_client_dry_run_mode_and_is_counted() {
    let (client, seen) = fake_client(|_, _, _, _| {
        reply(
            201,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": "shop"}}),
        )
    });
    let client = client.with_write_mode(WriteMode::ClientDryRun);
    let pod: Pod = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"}}),
    )
    .unwrap();
    let answer = client.create_dry_run(Some("shop"), &pod).await.unwrap();
    assert_eq!(answer.metadata.name.as_deref(), Some("probe"));
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].starts_with("POST /api/v1/namespaces/shop/pods?") && seen[0].contains("dryRun=All"),
        "{seen:?}"
    );
    assert_eq!(client.stats().count(RequestVerb::Create), 1);
}
