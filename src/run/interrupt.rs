//! Ctrl-C, counted once for the whole run.
//!
//! ```text
//! SIGINT ─► counter task ─► presses (tokio watch) ─► press 1: stop starting new writes
//!                                                 └► press 2: stop waiting, too
//! ```
//!
//! The engine asks thresholds (`presses() >= 1`, `>= 2`), never "was this
//! the first press": a watch channel keeps only the latest value, so two
//! quick presses can be seen as one change from 0 to 2, and that must still
//! stop new starts. Install the handler before the first write, so a Ctrl-C
//! between a write and its wait is never the process's default death (which
//! would end the run without saying what was written).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use super::Reporter;

/// The Ctrl-C presses of this run.
#[derive(Clone, Debug)]
pub struct Interrupts {
    presses: watch::Receiver<u32>,
    /// Keeps the channel open for handles made by [`Interrupts::manual`].
    _sender: Option<Arc<watch::Sender<u32>>>,
}

/// Presses Ctrl-C by hand (tests, and callers that turn another event into
/// an interrupt).
#[derive(Clone, Debug)]
pub struct InterruptHandle {
    sender: Arc<watch::Sender<u32>>,
}

impl InterruptHandle {
    /// One more press.
    pub fn press(&self) {
        self.sender.send_modify(|n| *n += 1);
    }
}

impl Interrupts {
    /// Counts the process's Ctrl-C presses from now on (the default handler,
    /// which ends the process, is replaced for the rest of the run).
    pub fn from_ctrl_c() -> Self {
        let (sender, presses) = watch::channel(0u32);
        // The handler is registered here, before this returns (and so before
        // the caller's first write), not when the counting task first runs.
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::interrupt()) {
                Ok(mut interrupts) => {
                    tokio::spawn(async move {
                        while interrupts.recv().await.is_some() {
                            sender.send_modify(|n| *n += 1);
                            if sender.is_closed() {
                                break;
                            }
                        }
                    });
                }
                Err(err) => tracing::warn!("cannot handle Ctrl-C: {err}"),
            }
        }
        #[cfg(not(unix))]
        {
            let mut first = Box::pin(tokio::signal::ctrl_c());
            tokio::spawn(async move {
                while first.as_mut().await.is_ok() {
                    sender.send_modify(|n| *n += 1);
                    if sender.is_closed() {
                        break;
                    }
                    first.set(tokio::signal::ctrl_c());
                }
            });
        }
        Interrupts {
            presses,
            _sender: None,
        }
    }

    /// Presses come only from the returned handle.
    pub fn manual() -> (Self, InterruptHandle) {
        let (sender, presses) = watch::channel(0u32);
        let sender = Arc::new(sender);
        (
            Interrupts {
                presses,
                _sender: Some(sender.clone()),
            },
            InterruptHandle { sender },
        )
    }

    /// Never interrupted.
    pub fn none() -> Self {
        Self::manual().0
    }

    /// Presses so far.
    pub fn presses(&self) -> u32 {
        *self.presses.borrow()
    }

    /// Whether new writes must not start (any press).
    pub fn stop_starting(&self) -> bool {
        self.presses() >= 1
    }

    /// Whether waits must end (a second press).
    pub fn stop_waiting(&self) -> bool {
        self.presses() >= 2
    }

    /// Resolves once at least `count` presses happened (never, if the
    /// counter is gone).
    pub async fn reached(&self, count: u32) {
        let mut presses = self.presses.clone();
        if presses.wait_for(|n| *n >= count).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves on the first press.
    pub async fn first(&self) {
        self.reached(1).await
    }

    /// Resolves on the second press.
    pub async fn second(&self) {
        self.reached(2).await
    }

    /// Runs `batch`, whose waits each end at the second press by
    /// themselves, and says so once: when the second press comes, or
    /// after the batch if its waits ended first.
    pub async fn noting_the_second<T>(
        &self,
        batch: impl Future<Output = T>,
        reporter: &dyn Reporter,
    ) -> T {
        const NO_LONGER_WAITING: &str = "Interrupted again: no longer waiting.";
        let said = std::cell::Cell::new(false);
        let second_press = async {
            self.second().await;
            reporter.note(NO_LONGER_WAITING);
            said.set(true);
            std::future::pending::<()>().await
        };
        let outcome = tokio::select! {
            outcome = batch => outcome,
            () = second_press => unreachable!("pending forever"),
        };
        if self.stop_waiting() && !said.get() {
            reporter.note(NO_LONGER_WAITING);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_presses_seen_as_one_change_still_stop_starting_and_waiting() {
        let (interrupts, handle) = Interrupts::manual();
        assert!(!interrupts.stop_starting());
        handle.press();
        handle.press();
        // Whoever looks now sees 2 at once, never 1.
        assert_eq!(interrupts.presses(), 2);
        assert!(interrupts.stop_starting());
        assert!(interrupts.stop_waiting());
        interrupts.first().await;
        interrupts.second().await;
    }

    #[tokio::test]
    async fn one_press_stops_starting_but_not_waiting() {
        let (interrupts, handle) = Interrupts::manual();
        handle.press();
        assert!(interrupts.stop_starting());
        assert!(!interrupts.stop_waiting());
        use futures::FutureExt;
        assert!(
            interrupts.second().now_or_never().is_none(),
            "one press is not two"
        );
        assert!(interrupts.first().now_or_never().is_some());
    }
}
