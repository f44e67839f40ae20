//! The one engine: every write a verb makes, every wait that follows it,
//! and what happens on a conflict, a failure or a Ctrl-C.
//!
//! ```text
//! commands (wiring) ─► mesh::plan (pure: typed Writes) ─► render + confirm
//!                                                            │
//!             ┌──────────────────── run ◄────────────────────┘
//!             │ batch      a few actions at once, stop on failure / Ctrl-C
//!             │ apply      send a Write; 409 → re-read → the verb's re-plan
//!             │ wait       await_condition(source, pure condition, deadline, stop)
//!             │ watch      one shared watch per kind and namespace
//!             │ follow     status --watch: the read set's lists kept current, shown paced
//!             │ restart    restart-sidecars' actions, then verify the proxies
//!             │ relabel    namespaces' label patches
//!             │ switch     gateway-switch: switch → verify → switch back → verify
//!             │ tag        a revision tag's objects, in order, stopping at a failure
//!             │ gateway_move  gateway-switch --gateway: label → re-render, rollout,
//!             │            Programmed, endpoints → put back → verify
//!             │ ztunnel_roll  node by node: cordon, evict, replace ztunnel, uncordon
//!             └──────────► api (every request: pagination, retries, dry run, counting)
//! ```
//!
//! Outcomes are enums the commands render; nothing here prints. Progress
//! goes to a [`Reporter`], which the output layer implements (bars at a
//! terminal, lines in a log) and tests replace.

pub mod apply;
pub mod batch;
pub mod follow;
pub mod gateway_move;
pub mod interrupt;
pub mod relabel;
pub mod restart;
pub mod switch;
pub mod tag;
pub mod wait;
pub mod watch;
pub mod ztunnel_roll;

pub use interrupt::{InterruptHandle, Interrupts};

/// `work`, or `None` once `limit` has passed: the one bound on a read that
/// is not a wait on a condition (completion's look-ups).
pub async fn within<T>(
    limit: std::time::Duration,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::time::timeout(limit, work).await.ok()
}

/// `work`, or `None` if Ctrl-C is pressed first (a long first read of
/// `status --watch` is stopped at once, not after its last page).
pub async fn unless_interrupted<T>(
    interrupts: &Interrupts,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        biased;
        () = interrupts.first() => None,
        out = work => Some(out),
    }
}

/// Where the engine says what it is doing.
pub trait Reporter {
    /// A line for everyone (a stop, an interrupt).
    fn note(&self, message: &str);
    /// A line for one action, such as `shop/deployment/cart`.
    fn step(&self, label: &str) -> Box<dyn StepReporter + '_>;
}

/// The progress of one action.
pub trait StepReporter {
    fn update(&self, message: &str);
    fn done(&self, message: &str);
}

/// Says nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn note(&self, _message: &str) {}
    fn step(&self, _label: &str) -> Box<dyn StepReporter + '_> {
        Box::new(Silent)
    }
}

impl StepReporter for Silent {
    fn update(&self, _message: &str) {}
    fn done(&self, _message: &str) {}
}

/// Keeps every line, for tests.
#[derive(Debug, Default)]
pub struct Recorded {
    pub lines: std::sync::Mutex<Vec<String>>,
}

impl Recorded {
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn push(&self, line: String) {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }
}

impl Reporter for Recorded {
    fn note(&self, message: &str) {
        self.push(message.to_string());
    }
    fn step(&self, label: &str) -> Box<dyn StepReporter + '_> {
        Box::new(RecordedStep {
            label: label.to_string(),
            log: self,
        })
    }
}

struct RecordedStep<'a> {
    label: String,
    log: &'a Recorded,
}

impl StepReporter for RecordedStep<'_> {
    fn update(&self, message: &str) {
        self.log.push(format!("{}: {message}", self.label));
    }
    fn done(&self, message: &str) {
        self.log.push(format!("{} done: {message}", self.label));
    }
}
