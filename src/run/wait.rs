//! The one wait: follow a watched state until a pure condition says done,
//! the deadline passes, the watch breaks, or Ctrl-C says stop.
//!
//! ```text
//! StateSource (a SharedWatch registration, a WatchedSet, ...) ──► state ──► condition(&state)
//!      ▲                                                                 │  Pending(what) ─► progress, next state
//!      └──────────── next_state(deadline) ◄──────────────────────────────┘  Done(r)        ─► Waited::Done(r)
//!   deadline passed ─► Waited::TimedOut { last }     broken ─► Waited::Broken     stop ─► Waited::Stopped
//! ```
//!
//! Conditions are plain functions of the state (as kube-runtime's
//! `Condition`s are), so they are unit-tested on values; rollouts use
//! `mesh::rollout`'s. Every wait of every verb goes through
//! [`await_condition`], so deadlines, a broken watch and an interrupt are
//! handled the same way everywhere.

use std::future::Future;
use std::sync::Arc;

use kube::core::Resource;
use tokio::sync::watch;
use tokio::time::Instant;

use super::watch::Seen;

/// What a condition says of one state.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict<R> {
    /// Not yet; what is happening, for the progress line.
    Pending(Option<String>),
    /// Finished, with the condition's answer.
    Done(R),
}

/// How a wait ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Waited<R> {
    Done(R),
    /// The deadline passed; the last progress text seen.
    TimedOut {
        last: Option<String>,
    },
    /// The state could no longer be followed (the sentence why).
    Broken(String),
    /// The stop signal fired (a second Ctrl-C, or the first while verifying).
    Stopped {
        last: Option<String>,
    },
}

/// Something that yields successive states of what is waited for.
pub trait StateSource {
    type State;

    /// The next state: at once the first time (the state now), then after
    /// each change. `Ok(None)` once `deadline` has passed; `Err` when the
    /// source is broken.
    fn next_state(
        &mut self,
        deadline: Instant,
    ) -> impl Future<Output = Result<Option<Self::State>, String>> + Send;
}

/// Waits until `condition` is done with a state of `source`, `deadline`
/// passes, or `stop` resolves. `progress` hears each new pending text.
pub async fn await_condition<S, R>(
    source: &mut S,
    mut condition: impl FnMut(&S::State) -> Verdict<R>,
    deadline: Instant,
    stop: impl Future<Output = ()>,
    mut progress: impl FnMut(&str),
) -> Waited<R>
where
    S: StateSource,
{
    let mut last: Option<String> = None;
    tokio::pin!(stop);
    loop {
        let next = tokio::select! {
            biased;
            () = &mut stop => return Waited::Stopped { last },
            next = source.next_state(deadline) => next,
        };
        match next {
            Ok(Some(state)) => match condition(&state) {
                Verdict::Done(result) => return Waited::Done(result),
                Verdict::Pending(Some(what)) => {
                    if last.as_deref() != Some(what.as_str()) {
                        progress(&what);
                        last = Some(what);
                    }
                }
                Verdict::Pending(None) => {}
            },
            Ok(None) => return Waited::TimedOut { last },
            Err(why) => return Waited::Broken(why),
        }
    }
}

/// One object's states, as a [`super::watch::SharedWatch`] delivers them.
/// [`Seen::Broken`] ends the wait as broken; `Unknown` is skipped.
pub struct Followed<K> {
    receiver: watch::Receiver<Seen<K>>,
    first: bool,
}

impl<K> Followed<K> {
    pub fn new(receiver: watch::Receiver<Seen<K>>) -> Self {
        Followed {
            receiver,
            first: true,
        }
    }
}

/// The state of one followed object.
#[derive(Debug)]
pub enum ObjectState<K> {
    Present(Arc<K>),
    Absent,
}

impl<K> StateSource for Followed<K>
where
    K: Resource + Send + Sync,
{
    type State = ObjectState<K>;

    async fn next_state(&mut self, deadline: Instant) -> Result<Option<Self::State>, String> {
        loop {
            if !self.first {
                match tokio::time::timeout_at(deadline, self.receiver.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err("the watch stopped".to_string()),
                    Err(_) => return Ok(None),
                }
            }
            self.first = false;
            let seen = self.receiver.borrow_and_update().clone();
            match seen {
                Seen::Unknown => continue,
                Seen::Present(object) => return Ok(Some(ObjectState::Present(object))),
                Seen::Absent => return Ok(Some(ObjectState::Absent)),
                Seen::Broken(why) => return Err(why),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::time::Duration;

    /// States handed out in order; then the deadline "passes".
    struct Script(VecDeque<Result<u32, String>>);

    impl StateSource for Script {
        type State = u32;
        async fn next_state(&mut self, _deadline: Instant) -> Result<Option<u32>, String> {
            match self.0.pop_front() {
                Some(Ok(n)) => Ok(Some(n)),
                Some(Err(e)) => Err(e),
                None => Ok(None),
            }
        }
    }

    fn at_least(target: u32) -> impl FnMut(&u32) -> Verdict<u32> {
        move |n: &u32| {
            if *n >= target {
                Verdict::Done(*n)
            } else {
                Verdict::Pending(Some(format!("{n} of {target}")))
            }
        }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn the_condition_ends_the_wait_and_progress_hears_each_new_state_once() {
        let mut source = Script([Ok(1), Ok(1), Ok(2), Ok(3)].into_iter().collect());
        let mut heard = Vec::new();
        let waited = await_condition(
            &mut source,
            at_least(3),
            later(),
            std::future::pending(),
            |s| heard.push(s.to_string()),
        )
        .await;
        assert_eq!(waited, Waited::Done(3));
        assert_eq!(heard, ["1 of 3", "2 of 3"]);
    }

    #[tokio::test]
    async fn a_deadline_reports_the_last_state_seen() {
        let mut source = Script([Ok(1), Ok(2)].into_iter().collect());
        let waited = await_condition(
            &mut source,
            at_least(3),
            later(),
            std::future::pending(),
            |_| {},
        )
        .await;
        assert_eq!(
            waited,
            Waited::TimedOut {
                last: Some("2 of 3".into())
            }
        );
    }

    #[tokio::test]
    async fn a_broken_source_ends_the_wait_with_its_sentence() {
        let mut source = Script([Ok(1), Err("forbidden".to_string())].into_iter().collect());
        let waited = await_condition(
            &mut source,
            at_least(3),
            later(),
            std::future::pending(),
            |_| {},
        )
        .await;
        assert_eq!(waited, Waited::Broken("forbidden".into()));
    }

    #[tokio::test]
    async fn a_stop_signal_wins_over_a_ready_state() {
        let mut source = Script([Ok(5)].into_iter().collect());
        let waited = await_condition(
            &mut source,
            at_least(3),
            later(),
            std::future::ready(()),
            |_| {},
        )
        .await;
        assert_eq!(waited, Waited::Stopped { last: None });
    }

    #[tokio::test]
    async fn a_followed_object_skips_unknown_and_reports_deletion() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let (sender, receiver) = watch::channel(Seen::<ConfigMap>::Unknown);
        let mut followed = Followed::new(receiver);
        let deadline = Instant::now() + Duration::from_secs(5);
        sender.send_replace(Seen::Present(Arc::new(ConfigMap::default())));
        assert!(matches!(
            followed.next_state(deadline).await,
            Ok(Some(ObjectState::Present(_)))
        ));
        sender.send_replace(Seen::Absent);
        assert!(matches!(
            followed.next_state(deadline).await,
            Ok(Some(ObjectState::Absent))
        ));
        sender.send_replace(Seen::Broken("gone".into()));
        assert_eq!(
            followed.next_state(deadline).await.err(),
            Some("gone".into())
        );
        drop(sender);
        assert_eq!(
            followed.next_state(deadline).await.err(),
            Some("the watch stopped".into())
        );
    }

    #[tokio::test]
    async fn a_followed_object_with_no_change_times_out_at_the_deadline() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let (sender, receiver) = watch::channel(Seen::<ConfigMap>::Absent);
        let mut followed = Followed::new(receiver);
        // Already passed: the first state comes at once, then the deadline.
        let deadline = Instant::now();
        assert!(matches!(
            followed.next_state(deadline).await,
            Ok(Some(ObjectState::Absent))
        ));
        assert!(matches!(followed.next_state(deadline).await, Ok(None)));
        drop(sender);
    }
}
