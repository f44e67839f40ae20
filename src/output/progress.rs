//! Progress on stderr while work runs (rollouts, waits): indicatif bars when
//! the output's settings allow them (stderr is a terminal that understands
//! them), otherwise one plain line per event, written through the output's
//! stderr writer (a CI log reads top to bottom, and a line is printed only
//! when something changed).
//!
//! `Progress` and `WorkloadProgress` are `Send + Sync + Clone`, so the tasks
//! of a concurrent run each hold their own.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{SharedWriter, lock};

/// The bars being drawn, if any: lines written meanwhile go above them.
#[derive(Clone, Default)]
pub(crate) struct ActiveBars(Arc<Mutex<Option<MultiProgress>>>);

/// Write one line to `stderr`, above the bars when they are drawn.
pub(crate) fn write_line(stderr: &SharedWriter, bars: &ActiveBars, line: &str) {
    let write = || {
        let mut stderr = lock(stderr);
        let _ = writeln!(stderr, "{line}");
        let _ = stderr.flush();
    };
    let multi = lock(&bars.0).clone();
    match multi {
        Some(multi) => multi.suspend(write),
        None => write(),
    }
}

/// Write raw bytes (a log event) to `stderr`, above the bars when drawn.
pub(crate) fn write_bytes(
    stderr: &SharedWriter,
    bars: &ActiveBars,
    bytes: &[u8],
) -> std::io::Result<()> {
    let write = || lock(stderr).write_all(bytes);
    let multi = lock(&bars.0).clone();
    match multi {
        Some(multi) => multi.suspend(write),
        None => write(),
    }
}

/// Progress of one run: an overall count and one line per unit of work.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    stderr: SharedWriter,
    active: ActiveBars,
    bars: Option<Bars>,
    /// Notes wrap at this width (a terminal's), as the output's do.
    width: Option<usize>,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(bars) = &self.bars {
            bars.overall.finish_and_clear();
            let _ = bars.multi.clear();
            lock(&self.active.0).take();
        }
    }
}

impl Progress {
    /// Bars when `bars`, lines otherwise; `total` units of work.
    pub(crate) fn new(
        bars: bool,
        total: usize,
        unit: &str,
        stderr: SharedWriter,
        active: ActiveBars,
        width: Option<usize>,
    ) -> Self {
        let bars = bars.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template(&format!(
                    "{{bar:30}} {{pos}}/{{len}} {unit} done {{msg}}"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            *lock(&active.0) = Some(multi.clone());
            Bars { multi, overall }
        });
        Progress {
            inner: Arc::new(Inner {
                stderr,
                active,
                bars,
                width,
            }),
        }
    }

    /// A line for one unit of work, `label` like `shop/deployment/cart`.
    pub fn workload(&self, label: impl Into<String>) -> WorkloadProgress {
        let label = label.into();
        let bar = self.inner.bars.as_ref().map(|bars| {
            let bar = bars
                .multi
                .insert_before(&bars.overall, ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        WorkloadProgress {
            label,
            bar,
            overall: self.clone(),
            last: Arc::new(Mutex::new(String::new())),
        }
    }

    /// A message outside any unit of work (Ctrl-C, the run stopping).
    pub fn note(&self, message: &str) {
        let wrapped = super::wrap_lines(message, self.inner.width);
        let message = wrapped.as_str();
        match &self.inner.bars {
            Some(bars) => {
                let _ = bars.multi.println(message);
            }
            None => write_line(&self.inner.stderr, &self.inner.active, message),
        }
    }

    fn one_done(&self) {
        if let Some(bars) = &self.inner.bars {
            bars.overall.inc(1);
        }
    }

    /// Clears the bars before the summary is printed.
    pub fn finish(&self) {
        if let Some(bars) = &self.inner.bars {
            bars.overall.finish_and_clear();
            let _ = bars.multi.clear();
            lock(&self.inner.active.0).take();
        }
    }
}

/// Progress of one unit of work.
#[derive(Clone)]
pub struct WorkloadProgress {
    label: String,
    bar: Option<ProgressBar>,
    overall: Progress,
    last: Arc<Mutex<String>>,
}

impl WorkloadProgress {
    /// Something changed; printed only when the text differs from the last.
    pub fn update(&self, message: &str) {
        {
            let mut last = lock(&self.last);
            if *last == message {
                return;
            }
            *last = message.to_string();
        }
        match &self.bar {
            Some(bar) => bar.set_message(message.to_string()),
            None => self.line(message),
        }
    }

    /// The end for this unit of work.
    pub fn done(&self, message: &str) {
        match &self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                self.overall.note(&format!("{}: {message}", self.label));
            }
            None => self.line(message),
        }
        self.overall.one_done();
    }

    fn line(&self, message: &str) {
        let inner = &self.overall.inner;
        write_line(
            &inner.stderr,
            &inner.active,
            &format!("{}: {message}", self.label),
        );
    }
}

impl crate::run::Reporter for Progress {
    fn note(&self, message: &str) {
        Progress::note(self, message);
    }

    fn step(&self, label: &str) -> Box<dyn crate::run::StepReporter + '_> {
        Box::new(self.workload(label))
    }
}

impl crate::run::StepReporter for WorkloadProgress {
    fn update(&self, message: &str) {
        WorkloadProgress::update(self, message);
    }

    fn done(&self, message: &str) {
        WorkloadProgress::done(self, message);
    }
}

#[cfg(test)]
mod tests {
    use crate::output::{Format, Output};

    #[test]
    fn without_a_terminal_each_change_is_one_line_and_repeats_are_dropped() {
        let (output, captured) = Output::capture(Format::Table, None);
        let progress = output.progress(2);
        let cart = progress.workload("shop/deployment/cart");
        cart.update("1 of 2 updated");
        cart.update("1 of 2 updated");
        cart.update("2 of 2 updated");
        progress.note("Interrupted");
        cart.done("restarted");
        progress.finish();
        assert_eq!(
            captured.stderr(),
            "shop/deployment/cart: 1 of 2 updated\nshop/deployment/cart: 2 of 2 updated\nInterrupted\nshop/deployment/cart: restarted\n"
        );
        assert_eq!(captured.stdout(), "");
    }

    #[test]
    fn the_engines_notes_wrap_at_the_terminals_width_like_the_outputs() {
        let (output, captured) = Output::capture(Format::Table, Some(40));
        let progress = output.progress(1);
        progress.note("Interrupted: starting no more nodes; finishing the 1 node in flight");
        assert_eq!(
            captured.stderr(),
            "Interrupted: starting no more nodes;\nfinishing the 1 node in flight\n"
        );
    }

    #[test]
    fn progress_reporters_can_move_to_other_threads() {
        fn send_sync<T: Send + Sync + Clone + 'static>(_: &T) {}
        let (output, captured) = Output::capture(Format::Table, None);
        let progress = output.progress(1);
        let one = progress.workload("a");
        send_sync(&progress);
        send_sync(&one);
        send_sync(&output);
        std::thread::spawn(move || one.done("ok")).join().unwrap();
        assert_eq!(captured.stderr(), "a: ok\n");
    }
}
