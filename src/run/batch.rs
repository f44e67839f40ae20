//! Running a plan's actions a few at a time, in plan order, stopping new
//! starts on a failure or a Ctrl-C.
//!
//! ```text
//! actions ─► up to `concurrency` in flight ─► each ends with a result
//!               ▲                              │ stops_the_run(result)? ─► start no more
//!               └─── next, unless stopping ◄───┘ Ctrl-C (any press)      ─► start no more
//! ```
//!
//! [`run_paced`] also asks a pure gate before each start (restart-sidecars:
//! the PodDisruptionBudgets, `mesh::pacing`): the next action is the first
//! not yet started that the gate lets start beside those in flight; when
//! none may, the batch waits for one in flight to end. Nothing sleeps.
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
    start: impl FnMut(usize) -> Fut,
    stops_the_run: impl Fn(&R) -> bool,
    on_stop: impl FnMut(StopCause, Option<&R>, usize),
) -> BatchOutcome<R>
where
    Fut: Future<Output = R>,
{
    run_paced(
        count,
        concurrency,
        interrupts,
        |_, _| true,
        start,
        stops_the_run,
        on_stop,
    )
    .await
}

/// [`run_bounded`], starting action `i` only when `may_start(i, in_flight)`
/// (the indices running) allows it: the first waiting action it allows,
/// in plan order. When nothing runs, the first waiting action starts
/// whatever the gate says, so a gate can slow a batch but never hang it.
pub async fn run_paced<R, Fut>(
    count: usize,
    concurrency: usize,
    interrupts: &Interrupts,
    may_start: impl Fn(usize, &[usize]) -> bool,
    mut start: impl FnMut(usize) -> Fut,
    stops_the_run: impl Fn(&R) -> bool,
    mut on_stop: impl FnMut(StopCause, Option<&R>, usize),
) -> BatchOutcome<R>
where
    Fut: Future<Output = R>,
{
    let mut results: Vec<Option<R>> = (0..count).map(|_| None).collect();
    let mut in_flight = FuturesUnordered::new();
    let mut running: Vec<usize> = Vec::new();
    let mut waiting: Vec<usize> = (0..count).collect();
    let mut stopping = false;
    let mut interrupted = false;
    loop {
        if !stopping && interrupts.stop_starting() {
            // Pressed before anything could notice (or between two starts).
            interrupted = true;
            stopping = true;
            on_stop(StopCause::Interrupt, None, in_flight.len());
        }
        while !stopping && in_flight.len() < concurrency.max(1) {
            let next = waiting
                .iter()
                .position(|i| running.is_empty() || may_start(*i, &running));
            let Some(position) = next else {
                break;
            };
            let index = waiting.remove(position);
            running.push(index);
            let action = start(index);
            in_flight.push(async move { (index, action.await) });
        }
        if in_flight.is_empty() {
            break;
        }
        tokio::select! {
            Some((index, result)) = in_flight.next() => {
                running.retain(|i| *i != index);
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
        // A press whose count arrived as the last action ended is still a
        // press during the run: what follows the batch must not start.
        interrupted: interrupted || interrupts.stop_starting(),
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
    async fn a_gate_keeps_apart_what_it_forbids_together_and_lets_the_rest_pass() {
        // Actions 0, 1 and 2 share a budget allowing one; 3 is free.
        let shares = |i: usize| i < 3;
        let running = RefCell::new(Vec::<usize>::new());
        let seen_together = RefCell::new(Vec::<Vec<usize>>::new());
        let order = RefCell::new(Vec::new());
        let outcome = run_paced(
            4,
            3,
            &Interrupts::none(),
            |i, in_flight| !(shares(i) && in_flight.iter().any(|o| shares(*o))),
            |i| {
                let (running, seen_together, order) = (&running, &seen_together, &order);
                async move {
                    order.borrow_mut().push(i);
                    running.borrow_mut().push(i);
                    seen_together.borrow_mut().push(running.borrow().clone());
                    tokio::task::yield_now().await;
                    tokio::task::yield_now().await;
                    running.borrow_mut().retain(|r| *r != i);
                    i
                }
            },
            |_| false,
            |_, _, _| panic!("nothing stops this batch"),
        )
        .await;
        assert_eq!(outcome.results, [Some(0), Some(1), Some(2), Some(3)]);
        assert_eq!(
            order.borrow()[..2],
            [0, 3],
            "3 overtakes the actions waiting for the budget"
        );
        for together in seen_together.borrow().iter() {
            assert!(
                together.iter().filter(|i| shares(**i)).count() <= 1,
                "{together:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_gate_that_allows_nothing_still_runs_one_at_a_time() {
        let outcome = run_paced(
            3,
            2,
            &Interrupts::none(),
            |_, _| false,
            |i| async move { i },
            |_| false,
            |_, _, _| {},
        )
        .await;
        assert_eq!(outcome.results, [Some(0), Some(1), Some(2)]);
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
