//! Tests of [`WatchedSet`] against an in-memory server: the set as listed,
//! then after each watch event; a resumed watch; a relist after 410; the
//! deadline. And of [`ResumableWatch`] replaying from "0", as restart-sidecars'
//! shared watch uses it, and started at a LIST's position with its relists
//! converted, as `status --watch` uses it.

use k8s_openapi::api::core::v1::ConfigMap;

use super::fake::{
    config_map, events, fake_client, forbidden, gone_event, list_body, resource_version_of,
};
use super::*;
use crate::selector::LabelSelector;

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
            (200, gone_event())
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
            forbidden("endpointslices")
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

fn replay(max_failed_starts: u32) -> WatchPolicy {
    WatchPolicy {
        origin: WatchOrigin::Replay,
        max_failed_starts,
        backoff_step: Duration::from_millis(1),
    }
}

fn describe(change: &WatchChange<ConfigMap>) -> String {
    match change {
        WatchChange::Restarted(listed) => format!("restarted {:?}", values(listed)),
        WatchChange::Added(c) => format!("added {:?}", values(std::slice::from_ref(c))),
        WatchChange::Modified(c) => format!("modified {:?}", values(std::slice::from_ref(c))),
        WatchChange::Deleted(c) => format!("deleted {:?}", values(std::slice::from_ref(c))),
    }
}

#[tokio::test]
async fn a_replayed_watch_resumes_then_starts_again_from_zero_after_410() {
    let (api, seen) = fake_client(|_, _, _, call| match call {
        // Ends after one event, as a server-side watch timeout does.
        1 => (200, events(&[("ADDED", config_map("a", "5", "1"))])),
        2 => (200, gone_event()),
        3 => (
            200,
            events(&[
                ("ADDED", config_map("a", "9", "2")),
                ("MODIFIED", config_map("a", "10", "3")),
                ("DELETED", config_map("b", "11", "1")),
            ]),
        ),
        _ => (200, String::new()),
    });
    let mut watch = api.resumable_watch::<ConfigMap>(
        ListScope::Namespace("shop".into()),
        ListSelector::everything(),
        replay(3),
    );
    let mut changes = Vec::new();
    for _ in 0..6 {
        let change = watch.next_event(Some(deadline(5))).await.unwrap();
        changes.push(describe(&change.expect("a change")));
    }
    assert_eq!(
        changes,
        [
            "restarted []",
            "added [\"a=1\"]",
            "restarted []",
            "added [\"a=2\"]",
            "modified [\"a=3\"]",
            "deleted [\"b=1\"]",
        ]
    );
    let log = seen.lock().unwrap().clone();
    assert!(
        log.iter().all(|r| r.contains("watch=true")),
        "no LIST: {log:?}"
    );
    let versions: Vec<_> = log.iter().map(|r| resource_version_of(r)).collect();
    assert_eq!(
        versions,
        [Some("0"), Some("5"), Some("0")],
        "from 0, resumed after the last event, from 0 again after 410: {log:?}"
    );
}

#[tokio::test]
async fn a_watch_that_cannot_start_returns_its_error_after_the_limit_then_tries_again() {
    let (api, seen) = fake_client(|_, _, _, _| forbidden("configmaps"));
    let mut watch = api.resumable_watch::<ConfigMap>(
        ListScope::Namespace("shop".into()),
        ListSelector::everything(),
        replay(3),
    );
    // Each failed start starts from scratch again, until the limit.
    let mut restarts = 0;
    let err = loop {
        match watch.next_event(Some(deadline(5))).await {
            Ok(Some(WatchChange::Restarted(_))) => restarts += 1,
            Ok(other) => panic!("{other:?}"),
            Err(err) => break err,
        }
    };
    assert!(err.to_string().contains("forbidden"), "{err:#}");
    assert_eq!(
        restarts, 3,
        "from scratch, then after each of two failed starts"
    );
    assert_eq!(seen.lock().unwrap().len(), 3, "three failed starts");
    // The caller may keep going: from scratch, with a fresh count.
    let again = watch.next_event(Some(deadline(5))).await.unwrap();
    assert!(matches!(again, Some(WatchChange::Restarted(_))));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_watch_started_at_a_lists_position_lists_nothing_first() {
    let (api, seen) =
        fake_client(|_, _, _, _| (200, events(&[("MODIFIED", config_map("a", "11", "2"))])));
    let (scope, selector) = shop();
    let mut watch = api
        .resumable_watch::<ConfigMap>(scope, selector, replay(3))
        .starting_at("10");
    let first = watch.next_event(Some(deadline(5))).await.unwrap();
    assert_eq!(describe(&first.expect("a change")), "modified [\"a=2\"]");
    let log = seen.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].contains("watch=true"), "no LIST first: {log:?}");
    assert_eq!(resource_version_of(&log[0]), Some("10"), "{log:?}");
}

#[tokio::test]
async fn an_expired_position_is_listed_again_converting_each_object() {
    let (api, seen) = fake_client(|_, _, query, _| {
        if query.contains("watch=true") {
            (200, gone_event())
        } else {
            (
                200,
                list_body(
                    "20",
                    vec![config_map("a", "18", "3"), config_map("b", "19", "1")],
                ),
            )
        }
    });
    let (scope, selector) = shop();
    let policy = WatchPolicy {
        origin: WatchOrigin::List,
        max_failed_starts: 3,
        backoff_step: Duration::from_millis(1),
    };
    let mut watch = api
        .resumable_watch_keeping::<ConfigMap, String>(scope, selector, policy, |c| {
            c.metadata.name.filter(|name| name != "b")
        })
        .starting_at("10");
    let change = watch.next_event(Some(deadline(5))).await.unwrap();
    let Some(WatchChange::Restarted(kept)) = change else {
        panic!("{change:?}");
    };
    assert_eq!(kept, ["a"], "converted page by page, b dropped");
    let log = seen.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "the watch from 10, then one LIST: {log:?}");
    assert_eq!(resource_version_of(&log[0]), Some("10"));
    assert!(!log[1].contains("watch=true"), "{log:?}");
}

#[tokio::test]
async fn a_refused_watch_is_final_at_once_when_the_caller_says_so() {
    let (api, seen) = fake_client(|_, _, _, _| forbidden("configmaps"));
    let (scope, selector) = shop();
    let mut watch = api
        .resumable_watch::<ConfigMap>(scope, selector, replay(5))
        .starting_at("10")
        .forbidden_is_final();
    let err = watch.next_event(Some(deadline(5))).await.unwrap_err();
    assert!(err.to_string().contains("forbidden"), "{err:#}");
    assert_eq!(seen.lock().unwrap().len(), 1, "one refused WATCH, no retry");
}
