//! Tests of [`SharedWatch`] against an in-memory server: one watch feeds
//! every waiter by name, across a resume and a start from "0" after 410.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;

use super::*;
use crate::api::fake::{
    config_map, events, fake_client, forbidden, gone_event, resource_version_of,
};

fn value(seen: &Seen<ConfigMap>) -> String {
    match seen {
        Seen::Unknown => "unknown".into(),
        Seen::Present(c) => c
            .data
            .as_ref()
            .and_then(|d| d.get("v"))
            .cloned()
            .unwrap_or_default(),
        Seen::Absent => "absent".into(),
        Seen::Broken(message) => format!("broken: {message}"),
    }
}

/// Waits until `receiver` shows `expected`; panics with the last state after 5 s.
async fn until(receiver: &mut watch::Receiver<Seen<ConfigMap>>, expected: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = value(&receiver.borrow_and_update());
        if now == expected {
            return;
        }
        match tokio::time::timeout_at(deadline, receiver.changed()).await {
            Ok(Ok(())) => {}
            _ => panic!("still {now:?}, waiting for {expected:?}"),
        }
    }
}

#[tokio::test]
async fn waiters_see_the_states_sent_after_a_410_started_the_watch_again_from_zero() {
    let (api, requests) = fake_client(|_, _, _, call| match call {
        1 => (
            200,
            events(&[
                ("ADDED", config_map("a", "5", "1")),
                ("ADDED", config_map("b", "6", "1")),
            ]),
        ),
        // The resumed watch's version has expired.
        2 => (200, gone_event()),
        3 => (
            200,
            events(&[
                ("ADDED", config_map("a", "9", "2")),
                ("DELETED", config_map("b", "10", "1")),
            ]),
        ),
        // Then the watch cannot start: it backs off instead of spinning.
        _ => forbidden("configmaps"),
    });
    let shared = SharedWatch::<ConfigMap>::start(&api, "shop");
    // Registered before the task runs (one thread): no event is missed.
    let mut a = shared.register("a");
    let mut b = shared.register("b");
    until(&mut a, "2").await;
    until(&mut b, "absent").await;
    let log = requests.lock().unwrap().clone();
    assert!(
        log[..3]
            .iter()
            .all(|r| r.starts_with("GET /api/v1/namespaces/shop/configmaps?")
                && r.contains("watch=true")),
        "one WATCH of the kind and namespace at a time, no LIST: {log:?}"
    );
    let versions: Vec<_> = log[..3].iter().map(|r| resource_version_of(r)).collect();
    assert_eq!(
        versions,
        [Some("0"), Some("6"), Some("0")],
        "from 0, resumed after the last event, from 0 again after 410: {log:?}"
    );
}
