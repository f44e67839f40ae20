//! Tests of the API layer against an in-memory HTTP service: pagination,
//! retries, the dry-run guard, error sentences and kubeconfig loading.

use std::convert::Infallible;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde_json::json;

use super::fake::{Reply, Requests, reply, replying, status_body};
use super::*;

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

#[test]
fn the_retry_after_header_is_copied_into_the_status_details() {
    let body = with_retry_after(b"Too many requests", Some(7));
    let status: kube::core::Status = serde_json::from_slice(&body).unwrap();
    assert_eq!(status.code, 429);
    assert_eq!(status.details.unwrap().retry_after_seconds, 7);

    let original = status_body(429, "TooManyRequests", "slow down");
    let body = with_retry_after(original.to_string().as_bytes(), Some(3));
    let status: kube::core::Status = serde_json::from_slice(&body).unwrap();
    assert_eq!(status.message, "slow down");
    assert_eq!(status.details.unwrap().retry_after_seconds, 3);
}

#[test]
fn retry_decisions_follow_the_status_code() {
    let policy = RetryPolicy::default();
    let api = |code: u16, retry_after: u32| {
        let mut status = kube::core::Status::failure("x", "y").with_code(code);
        if retry_after > 0 {
            status.details =
                Some(serde_json::from_value(json!({"retryAfterSeconds": retry_after})).unwrap());
        }
        kube::Error::Api(Box::new(status))
    };
    assert_eq!(
        policy.delay_after(&api(429, 7), 0),
        Some(Duration::from_secs(7))
    );
    assert_eq!(policy.delay_after(&api(429, 0), 0), Some(policy.base_delay));
    assert_eq!(
        policy.delay_after(&api(503, 0), 2),
        Some(policy.base_delay * 4)
    );
    assert_eq!(policy.delay_after(&api(500, 0), policy.max_retries), None);
    assert_eq!(
        policy.delay_after(&api(500, 0), 4),
        Some(policy.base_delay * 16).map(|d| d.min(policy.max_delay))
    );
    for final_code in [400, 401, 403, 404, 409, 410, 422] {
        assert_eq!(
            policy.delay_after(&api(final_code, 0), 0),
            None,
            "{final_code}"
        );
    }
    assert_eq!(
        policy.delay_after(&api(429, 3600), 0),
        Some(policy.max_retry_after)
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

#[test]
fn requests_are_counted_by_their_rbac_verb() {
    use http::Method;
    assert_eq!(
        RequestVerb::of(&Method::GET, "/api/v1/pods", Some("limit=500")),
        RequestVerb::List
    );
    assert_eq!(
        RequestVerb::of(&Method::GET, "/api/v1/namespaces", None),
        RequestVerb::List
    );
    assert_eq!(
        RequestVerb::of(&Method::GET, "/api/v1/namespaces/shop", None),
        RequestVerb::Get
    );
    assert_eq!(
        RequestVerb::of(&Method::GET, "/api/v1/namespaces/shop/pods", None),
        RequestVerb::List
    );
    assert_eq!(
        RequestVerb::of(
            &Method::GET,
            "/apis/apps/v1/namespaces/shop/deployments/cart",
            None
        ),
        RequestVerb::Get
    );
    assert_eq!(
        RequestVerb::of(
            &Method::GET,
            "/apis/apps/v1/deployments",
            Some("watch=true&resourceVersion=5")
        ),
        RequestVerb::Watch
    );
    assert_eq!(
        RequestVerb::of(&Method::GET, "/version", None),
        RequestVerb::Get
    );
    assert_eq!(
        RequestVerb::of(
            &Method::PATCH,
            "/apis/apps/v1/namespaces/a/deployments/b",
            None
        ),
        RequestVerb::Patch
    );
}

#[test]
fn the_user_is_read_from_the_servers_forbidden_message() {
    let message = "pods is forbidden: User \"system:serviceaccount:ci:deployer\" cannot list resource \"pods\"";
    assert_eq!(
        user_in_forbidden_message(message).as_deref(),
        Some("system:serviceaccount:ci:deployer")
    );
    assert_eq!(user_in_forbidden_message("forbidden"), None);
}

const KUBECONFIG_A: &str = r#"
apiVersion: v1
kind: Config
current-context: a
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:6443"}
- name: shared
  cluster: {server: "https://first.example:6443"}
contexts:
- name: a
  context: {cluster: a, user: a, namespace: shop}
users:
- name: a
  user: {token: secret-a}
"#;

const KUBECONFIG_B: &str = r#"
apiVersion: v1
kind: Config
current-context: b
clusters:
- name: b
  cluster: {server: "https://127.0.0.2:6443"}
- name: shared
  cluster: {server: "https://second.example:6443"}
contexts:
- name: b
  context: {cluster: b, user: b}
- name: c
  context: {cluster: shared, user: b}
users:
- name: b
  user: {token: secret-b}
"#;

fn write_kubeconfigs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(&a, KUBECONFIG_A).unwrap();
    std::fs::write(&b, KUBECONFIG_B).unwrap();
    (dir, a, b)
}

#[test]
fn kubeconfig_paths_merge_first_wins_and_missing_files_are_skipped() {
    let (dir, a, b) = write_kubeconfigs();
    let missing = dir.path().join("missing.yaml");
    let env = std::env::join_paths([&missing, &a, &b]).unwrap();
    let loaded = load_kubeconfig(None, Some(env), None).unwrap();
    assert_eq!(loaded.config.current_context.as_deref(), Some("a"));
    let names: Vec<&str> = loaded
        .config
        .contexts
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    let shared = loaded
        .config
        .clusters
        .iter()
        .find(|c| c.name == "shared")
        .unwrap();
    assert_eq!(
        shared.cluster.as_ref().unwrap().server.as_deref(),
        Some("https://first.example:6443")
    );
}

#[test]
fn no_kubeconfig_anywhere_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_kubeconfig(None, None, Some(dir.path().to_path_buf())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no kubeconfig found: set KUBECONFIG or pass --kubeconfig"
    );
    let env = dir.path().join("nothing-here.yaml").into_os_string();
    let err = load_kubeconfig(None, Some(env), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no kubeconfig found: set KUBECONFIG or pass --kubeconfig"
    );
}

#[test]
fn an_explicit_kubeconfig_that_does_not_exist_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.yaml");
    let err = load_kubeconfig(Some(&path), None, None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read the kubeconfig {}", path.display())),
        "{err}"
    );
}

#[tokio::test]
async fn an_unknown_context_lists_the_known_ones() {
    let (_dir, a, b) = write_kubeconfigs();
    let env = std::env::join_paths([&a, &b]).unwrap();
    let loaded = load_kubeconfig(None, Some(env), None).unwrap();
    let options = ConnectOptions {
        context: Some("prod".into()),
        ..Default::default()
    };
    let err = resolve_config(loaded, &options).await.err().unwrap();
    assert_eq!(
        err.to_string(),
        "context \"prod\" is not in the kubeconfig; known contexts: a, b, c"
    );
}

#[tokio::test]
async fn the_context_namespace_and_impersonation_are_applied() {
    let (_dir, a, _b) = write_kubeconfigs();
    let loaded = load_kubeconfig(Some(&a), None, None).unwrap();
    let options = ConnectOptions {
        impersonate_user: Some("bob".into()),
        impersonate_groups: vec!["ops".into()],
        insecure_skip_tls_verify: true,
        request_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let resolved = resolve_config(loaded, &options).await.unwrap();
    assert_eq!(resolved.default_namespace, "shop");
    assert_eq!(resolved.target.context, "a");
    assert_eq!(resolved.target.server, "https://127.0.0.1:6443");
    assert_eq!(resolved.user, "bob");
    assert_eq!(
        resolved.config.auth_info.impersonate.as_deref(),
        Some("bob")
    );
    assert_eq!(
        resolved.config.auth_info.impersonate_groups,
        Some(vec!["ops".to_string()])
    );
    assert!(resolved.config.accept_invalid_certs);
    assert!(!resolved.config.default_retry);
    assert_eq!(
        resolved.config.connect_timeout,
        Some(Duration::from_secs(2))
    );
}

#[tokio::test]
async fn impersonating_groups_without_a_user_is_a_usage_error() {
    let (_dir, a, _b) = write_kubeconfigs();
    let loaded = load_kubeconfig(Some(&a), None, None).unwrap();
    let options = ConnectOptions {
        impersonate_groups: vec!["ops".into()],
        ..Default::default()
    };
    let err = resolve_config(loaded, &options).await.err().unwrap();
    assert_eq!(
        crate::error::exit_code_of(&err),
        crate::error::ExitCode::Usage
    );
}
