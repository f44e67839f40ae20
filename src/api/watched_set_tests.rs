//! Tests of [`WatchedSet`] against an in-memory server: the set as listed,
//! then after each watch event; a resumed watch; a relist after 410; the
//! deadline.

use std::convert::Infallible;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;

use super::*;

type Seen = Arc<Mutex<Vec<String>>>;

/// A client whose server answers `handler(method, path, query, call number)`
/// with a status and a body (watch bodies are newline-separated events).
fn fake_client(
    handler: impl Fn(&str, &str, &str, usize) -> (u16, String) + Send + Sync + 'static,
) -> (ApiClient, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let handler = Arc::new(handler);
    let service = tower::service_fn(move |req: Request<kube::client::Body>| {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let call = {
            let mut log = log.lock().unwrap();
            log.push(format!("{method} {path}?{query}"));
            log.len()
        };
        let (status, body) = handler(&method, &path, &query, call);
        async move {
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .body(Full::new(Bytes::from(body)))
                    .unwrap(),
            )
        }
    });
    let target = ClusterTarget {
        context: "test".into(),
        server: "https://127.0.0.1:1".into(),
    };
    (ApiClient::from_service(service, target, "default"), seen)
}

fn config_map(name: &str, version: &str, value: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "shop", "resourceVersion": version},
        "data": {"v": value},
    })
}

fn list_body(version: &str, items: Vec<Value>) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": version}, "items": items})
        .to_string()
}

fn events(events: &[(&str, Value)]) -> String {
    events
        .iter()
        .map(|(kind, object)| json!({"type": kind, "object": object}).to_string() + "\n")
        .collect()
}

fn values(set: &[ConfigMap]) -> Vec<String> {
    set.iter()
        .map(|c| {
            format!(
                "{}={}",
                c.metadata.name.clone().unwrap_or_default(),
                c.data
                    .as_ref()
                    .and_then(|d| d.get("v"))
                    .cloned()
                    .unwrap_or_default()
            )
        })
        .collect()
}

fn deadline(seconds: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(seconds)
}

fn shop() -> (ListScope, ListSelector) {
    (
        ListScope::Namespace("shop".into()),
        ListSelector::labels(LabelSelector::parse("app=web").unwrap()),
    )
}

#[tokio::test]
async fn the_set_is_listed_then_changed_by_each_watch_event() {
    let (api, seen) = fake_client(|_, _, query, _| {
        if query.contains("watch=true") {
            let body = events(&[
                ("MODIFIED", config_map("a", "11", "2")),
                ("ADDED", config_map("b", "12", "1")),
                ("DELETED", config_map("a", "13", "2")),
            ]);
            (200, body)
        } else {
            (200, list_body("10", vec![config_map("a", "9", "1")]))
        }
    });
    let (scope, selector) = shop();
    let mut set = api.watch_set::<ConfigMap>(scope, selector);
    let mut seen_sets = Vec::new();
    for _ in 0..4 {
        let next = set.next(deadline(5)).await.unwrap().expect("a set");
        seen_sets.push(values(&next));
    }
    assert_eq!(
        seen_sets,
        vec![
            vec!["a=1".to_string()],
            vec!["a=2".to_string()],
            vec!["a=2".to_string(), "b=1".to_string()],
            vec!["b=1".to_string()],
        ]
    );
    let log = seen.lock().unwrap().clone();
    assert!(log[0].contains("labelSelector=app%3Dweb"), "{log:?}");
    assert!(
        log[1].contains("watch=true") && log[1].contains("resourceVersion=10"),
        "the watch starts where the list was taken: {log:?}"
    );
}

#[tokio::test]
async fn an_expired_watch_lists_again() {
    let (api, seen) = fake_client(|_, _, query, call| {
        if query.contains("watch=true") {
            let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired", "message": "too old resource version"}});
            (200, gone.to_string() + "\n")
        } else if call == 1 {
            (200, list_body("10", vec![config_map("a", "9", "1")]))
        } else {
            (200, list_body("20", vec![config_map("a", "19", "3")]))
        }
    });
    let (scope, selector) = shop();
    let mut set = api.watch_set::<ConfigMap>(scope, selector);
    assert_eq!(
        values(&set.next(deadline(5)).await.unwrap().unwrap()),
        ["a=1"]
    );
    assert_eq!(
        values(&set.next(deadline(5)).await.unwrap().unwrap()),
        ["a=3"]
    );
    let log = seen.lock().unwrap().clone();
    assert_eq!(log.len(), 3, "list, watch, list: {log:?}");
}

#[tokio::test]
async fn a_watch_the_server_ends_resumes_from_the_last_version() {
    let (api, seen) = fake_client(|_, _, query, call| {
        if !query.contains("watch=true") {
            return (200, list_body("10", vec![config_map("a", "9", "1")]));
        }
        if call == 2 {
            // Ends after one event, as a server-side watch timeout does.
            (200, events(&[("MODIFIED", config_map("a", "15", "2"))]))
        } else {
            (200, events(&[("MODIFIED", config_map("a", "16", "3"))]))
        }
    });
    let (scope, selector) = shop();
    let mut set = api.watch_set::<ConfigMap>(scope, selector);
    set.next(deadline(5)).await.unwrap();
    assert_eq!(
        values(&set.next(deadline(5)).await.unwrap().unwrap()),
        ["a=2"]
    );
    assert_eq!(
        values(&set.next(deadline(5)).await.unwrap().unwrap()),
        ["a=3"]
    );
    let log = seen.lock().unwrap().clone();
    assert!(
        log[2].contains("resourceVersion=15"),
        "the second watch resumes after the last event: {log:?}"
    );
}

#[tokio::test]
async fn nothing_changing_until_the_deadline_returns_none() {
    let (api, _) = fake_client(|_, _, query, _| {
        if query.contains("watch=true") {
            (200, String::new())
        } else {
            (200, list_body("10", vec![]))
        }
    });
    let (scope, selector) = shop();
    let mut set = api.watch_set::<ConfigMap>(scope, selector);
    assert_eq!(
        set.next(deadline(5)).await.unwrap().map(|s| s.len()),
        Some(0)
    );
    let started = std::time::Instant::now();
    let end = tokio::time::Instant::now() + Duration::from_millis(300);
    assert!(set.next(end).await.unwrap().is_none());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_watch_that_keeps_failing_ends_the_wait_with_its_error() {
    let (api, _) = fake_client(|_, _, query, _| {
        if query.contains("watch=true") {
            let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403, "reason": "Forbidden", "message": "endpointslices is forbidden"});
            (403, body.to_string())
        } else {
            (200, list_body("10", vec![]))
        }
    });
    let (scope, selector) = shop();
    let mut set = api.watch_set::<ConfigMap>(scope, selector);
    let mut lists = 0;
    let err = loop {
        match set.next(deadline(30)).await {
            Ok(Some(_)) => lists += 1,
            Ok(None) => panic!("the deadline is far away"),
            Err(err) => break err,
        }
    };
    assert!(lists >= 1);
    assert!(err.to_string().contains("forbidden"), "{err:#}");
}
