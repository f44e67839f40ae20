//! The pacing of `status --watch` (pure, on instants made up here) and its
//! engine against the in-memory API server: a change from a watch started
//! at the LIST's position is shown, Ctrl-C ends the view, a refused watch
//! ends it with its sentence.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::*;
use crate::api::fake::{events, fake_client, forbidden, resource_version_of};
use crate::api::{ListScope, ListSelector};
use crate::collect::{CollectOptions, RawLists};
use crate::snapshot::{PodInfo, Scope};

const PACE_FOR_TESTS: Pace = Pace {
    min_interval: Duration::from_millis(500),
    settle: Duration::from_millis(50),
    cost_factor: 5,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn the_first_change_after_a_quiet_spell_waits_only_for_its_burst_to_settle() {
    let start = Instant::now();
    let mut pacer = Pacer::new(PACE_FOR_TESTS, start);
    pacer.shown(start, ms(10));
    assert_eq!(pacer.due(), None, "nothing changed");
    let later = start + Duration::from_secs(5);
    pacer.changed(later);
    assert_eq!(pacer.due(), Some(later + ms(50)));
}

#[test]
fn a_burst_of_changes_is_shown_once_no_sooner_than_the_interval_after_the_last_screen() {
    let start = Instant::now();
    let mut pacer = Pacer::new(PACE_FOR_TESTS, start);
    pacer.shown(start, ms(10));
    for n in 0..1000 {
        pacer.changed(start + ms(1) + Duration::from_micros(n));
    }
    assert_eq!(
        pacer.due(),
        Some(start + ms(500)),
        "one screen, at the interval"
    );
    pacer.shown(start + ms(500), ms(10));
    assert_eq!(pacer.due(), None);
}

#[test]
fn an_expensive_screen_stretches_the_time_to_the_next_one() {
    let start = Instant::now();
    let mut pacer = Pacer::new(PACE_FOR_TESTS, start);
    // A 50,000-pod screen that took 400 ms: the next one comes 2 s later.
    pacer.shown(start, ms(400));
    pacer.changed(start + ms(1));
    assert_eq!(pacer.due(), Some(start + Duration::from_secs(2)));
}

fn pod(ready: bool, version: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-a", "namespace": "shop", "uid": "uid-web-a",
                     "resourceVersion": version},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    })
}

fn shop() -> (LiveLists, Vec<ListPosition>) {
    let first: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod(false, "9")).unwrap();
    let options = CollectOptions {
        scope: Scope::Namespaces(vec!["shop".into()]),
        control_plane_namespace: "istio-system".into(),
        selector: None,
    };
    let lists = LiveLists::new(
        RawLists {
            pods: vec![PodInfo::from(&first)],
            ..RawLists::default()
        },
        &options,
    );
    let positions = vec![ListPosition {
        kind: ListKind::Pods,
        scope: ListScope::Namespace("shop".into()),
        selector: ListSelector::everything(),
        resource_version: "10".into(),
    }];
    (lists, positions)
}

#[tokio::test]
async fn a_change_seen_by_the_watch_from_the_lists_position_is_shown_and_ctrl_c_ends_the_view() {
    let (api, seen) = fake_client(|_, _, query, call| {
        assert!(query.contains("watch=true"), "only WATCHes: {query}");
        if call == 1 {
            (
                200,
                events(&[
                    // An update that changes nothing kept, then one that does.
                    ("MODIFIED", pod(false, "11")),
                    ("MODIFIED", pod(true, "12")),
                ]),
            )
        } else {
            // Later watches (resumed from 12) see nothing new.
            (200, String::new())
        }
    });
    let (lists, positions) = shop();
    let (interrupts, ctrl_c) = Interrupts::manual();
    let shown: Arc<Mutex<Vec<bool>>> = Arc::default();
    let record = shown.clone();
    let pace = Pace {
        min_interval: Duration::ZERO,
        settle: Duration::ZERO,
        cost_factor: 0,
    };
    follow(
        &api,
        lists,
        &positions,
        "istio-system",
        &interrupts,
        pace,
        |snapshot| {
            let mut shown = record.lock().unwrap();
            shown.push(snapshot.pods[0].ready);
            if shown.len() == 2 {
                ctrl_c.press();
            }
            Ok(())
        },
    )
    .await
    .unwrap();
    assert_eq!(*shown.lock().unwrap(), [false, true]);
    let log = seen.lock().unwrap().clone();
    assert_eq!(resource_version_of(&log[0]), Some("10"), "{log:?}");
    assert!(
        log[0].starts_with("GET /api/v1/namespaces/shop/pods?"),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_refused_watch_ends_the_view_with_the_api_servers_refusal() {
    let (api, seen) = fake_client(|_, _, _, _| forbidden("pods"));
    let (lists, positions) = shop();
    let mut screens = 0;
    let err = follow(
        &api,
        lists,
        &positions,
        "istio-system",
        &Interrupts::none(),
        PACE_FOR_TESTS,
        |_| {
            screens += 1;
            Ok(())
        },
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").starts_with("forbidden: cannot watch pods in namespace shop"),
        "{err:#}"
    );
    assert_eq!(screens, 1, "the first screen, then the refusal");
    assert_eq!(seen.lock().unwrap().len(), 1, "not retried");
}
