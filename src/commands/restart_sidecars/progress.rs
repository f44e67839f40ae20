//! Progress on stderr while rollouts run: indicatif bars when stderr is a
//! terminal, otherwise one plain line per event (a CI log reads top to
//! bottom, and a line is only printed when something changed).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

enum Inner {
    Bars {
        multi: MultiProgress,
        overall: ProgressBar,
    },
    Lines,
}

impl Progress {
    /// Bars on a terminal, lines otherwise; `total` workloads to restart.
    pub fn new(terminal: bool, total: usize) -> Self {
        let inner = if terminal {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} workloads done {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Inner::Bars { multi, overall }
        } else {
            Inner::Lines
        };
        Progress {
            inner: Arc::new(inner),
        }
    }

    /// A line for one workload, `label` like `shop/deployment/cart`.
    pub fn workload(&self, label: String) -> WorkloadProgress {
        let bar = match &*self.inner {
            Inner::Bars { multi, overall } => {
                let bar = multi.insert_before(overall, ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(label.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                Some(bar)
            }
            Inner::Lines => None,
        };
        WorkloadProgress {
            label,
            bar,
            overall: self.clone(),
            last: Arc::new(Mutex::new(String::new())),
        }
    }

    /// A message outside any workload (Ctrl-C, the run stopping).
    pub fn note(&self, message: &str) {
        match &*self.inner {
            Inner::Bars { multi, .. } => {
                let _ = multi.println(message);
            }
            Inner::Lines => eprintln!("{message}"),
        }
    }

    fn one_done(&self) {
        if let Inner::Bars { overall, .. } = &*self.inner {
            overall.inc(1);
        }
    }

    /// Clears the bars before the summary is printed.
    pub fn finish(&self) {
        if let Inner::Bars { overall, multi } = &*self.inner {
            overall.finish_and_clear();
            let _ = multi.clear();
        }
    }
}

/// Progress of one workload.
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
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if *last == message {
                return;
            }
            *last = message.to_string();
        }
        match &self.bar {
            Some(bar) => bar.set_message(message.to_string()),
            None => eprintln!("{}: {message}", self.label),
        }
    }

    /// The end for this workload.
    pub fn done(&self, message: &str) {
        match &self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                self.overall.note(&format!("{}: {message}", self.label));
            }
            None => eprintln!("{}: {message}", self.label),
        }
        self.overall.one_done();
    }
}

impl crate::run::Reporter for Progress {
    fn note(&self, message: &str) {
        Progress::note(self, message);
    }

    fn step(&self, label: &str) -> Box<dyn crate::run::StepReporter + '_> {
        Box::new(self.workload(label.to_string()))
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
