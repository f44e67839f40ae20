//! Running a plan's actions a few at a time, in plan order, stopping new
//! starts on a failure or a Ctrl-C.
//!
//! ```text
//! actions ─► up to `concurrency` in flight ─► each ends with a result
//!               ▲                              │ stops_the_run(result)? ─► start no more
//!               └─── next, unless stopping ◄───┘ Ctrl-C (any press)      ─► start no more
//! ```
//!
//! The actions already started always run to their end: each one is a
//! write followed by a wait, and the wait itself listens for the second
//! Ctrl-C. Nothing is aborted half-way, so every result is an outcome the
//! action reported, and the caller can say exactly what was written.

use std::future::Future;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::interrupt::Interrupts;

/// Why the batch stopped starting new actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// The action at this index ended in a way that stops the run.
    Failure(usize),
    Interrupt,
}

/// The batch's results: `None` for actions that never started.
#[derive(Debug)]
pub struct BatchOutcome<R> {
    pub results: Vec<Option<R>>,
    pub interrupted: bool,
}

/// Runs `start(0..count)`, at most `concurrency` at once.
/// `on_stop(cause, result, in_flight)` is told once when no more are
/// started (`result`: the one that stopped the run).
pub async fn run_bounded<R, Fut>(
    count: usize,
    concurrency: usize,
    interrupts: &Interrupts,
    mut start: impl FnMut(usize) -> Fut,
    stops_the_run: impl Fn(&R) -> bool,
    mut on_stop: impl FnMut(StopCause, Option<&R>, usize),
) -> BatchOutcome<R>
where
    Fut: Future<Output = R>,
{
    let mut results: Vec<Option<R>> = (0..count).map(|_| None).collect();
    let mut in_flight = FuturesUnordered::new();
    let mut next = 0;
    let mut stopping = false;
    let mut interrupted = false;
    loop {
        if !stopping && interrupts.stop_starting() {
            // Pressed before anything could notice (or between two starts).
            interrupted = true;
            stopping = true;
            on_stop(StopCause::Interrupt, None, in_flight.len());
        }
        while !stopping && in_flight.len() < concurrency.max(1) && next < count {
            let index = next;
            let action = start(index);
            in_flight.push(async move { (index, action.await) });
            next += 1;
        }
        if in_flight.is_empty() {
            break;
        }
        tokio::select! {
            Some((index, result)) = in_flight.next() => {
                if !stopping && stops_the_run(&result) {
                    stopping = true;
                    on_stop(StopCause::Failure(index), Some(&result), in_flight.len());
                }
                results[index] = Some(result);
            }
            () = interrupts.first(), if !interrupted => {
                interrupted = true;
                if !stopping {
                    stopping = true;
                    on_stop(StopCause::Interrupt, None, in_flight.len());
                }
            }
        }
    }
    BatchOutcome {
        results,
        interrupted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[tokio::test]
    async fn at_most_the_concurrency_runs_at_once_and_all_finish() {
        let running = RefCell::new((0usize, 0usize));
        let outcome = run_bounded(
            6,
            2,
            &Interrupts::none(),
            |i| {
                let running = &running;
                async move {
                    {
                        let mut r = running.borrow_mut();
                        r.0 += 1;
                        r.1 = r.1.max(r.0);
                    }
                    tokio::task::yield_now().await;
                    running.borrow_mut().0 -= 1;
                    i * 10
                }
            },
            |_| false,
            |_, _, _| panic!("nothing stops this batch"),
        )
        .await;
        assert_eq!(running.borrow().1, 2);
        let results: Vec<Option<usize>> = outcome.results;
        assert_eq!(results, (0..6).map(|i| Some(i * 10)).collect::<Vec<_>>());
        assert!(!outcome.interrupted);
    }

    #[tokio::test]
    async fn a_failure_starts_nothing_more_but_lets_the_others_in_flight_end() {
        let mut stops = Vec::new();
        let outcome = run_bounded(
            5,
            2,
            &Interrupts::none(),
            |i| async move {
                if i == 0 {
                    "failed"
                } else {
                    tokio::task::yield_now().await;
                    "ok"
                }
            },
            |r| *r == "failed",
            |cause, _, in_flight| stops.push((cause, in_flight)),
        )
        .await;
        assert_eq!(
            outcome.results,
            [Some("failed"), Some("ok"), None, None, None]
        );
        assert_eq!(stops, [(StopCause::Failure(0), 1)]);
    }

    #[tokio::test]
    async fn two_presses_before_the_first_look_still_stop_new_starts() {
        let (interrupts, handle) = Interrupts::manual();
        let mut stops = Vec::new();
        let started = RefCell::new(Vec::new());
        let outcome = run_bounded(
            4,
            1,
            &interrupts,
            |i| {
                started.borrow_mut().push(i);
                if i == 0 {
                    // Both presses land while the first action runs.
                    handle.press();
                    handle.press();
                }
                async move { i }
            },
            |_| false,
            |cause, _, _| stops.push(cause),
        )
        .await;
        assert!(outcome.interrupted);
        assert_eq!(*started.borrow(), [0], "nothing starts after Ctrl-C");
        assert_eq!(outcome.results, [Some(0), None, None, None]);
        assert_eq!(stops, [StopCause::Interrupt]);
    }
}
