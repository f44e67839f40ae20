//! Where output goes and how it looks: the one object every line passes
//! through.
//!
//! stdout carries the result: a table, or one JSON/YAML document that a
//! pipeline can parse. Everything meant for a person reading along —
//! warnings, progress, prompts, the final error line — goes to stderr, so
//! `-o json | jq` never sees it.
//!
//! [`Output`] owns both streams as writers, so a test hands it buffers
//! ([`Output::capture`]) and reads back exactly what a person would see. The
//! decisions that depend on the environment are made once, from plain facts
//! ([`Environment`] → [`Settings`], pure and unit-tested):
//!
//! - colour, per stream: on only when that stream is a terminal, `TERM` is
//!   not `dumb`, `--no-color` was not given and `NO_COLOR` is unset or empty
//!   (<https://no-color.org>);
//! - progress bars: only when stderr is a terminal and `TERM` is not `dumb`;
//!   otherwise one plain line per event;
//! - the width text is laid out for: the terminal's, or none at all when
//!   the stream is not a terminal (a pipe gets rows at whatever width they
//!   need, never a wrapped name);
//! - prompts: asked only when stdin is a terminal;
//! - redrawing a screen in place (`status --watch`): only when stdout is a
//!   terminal and `TERM` is not `dumb`; elsewhere new text is appended.
//!
//! This module knows nothing of the command line: [`Format`] is its own, and
//! the parsed flags are converted where they are parsed.

pub mod progress;

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use serde::Serialize;

use crate::render::Layout;
pub use progress::{Progress, WorkloadProgress};

/// The output formats: two for a person, two for a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The tables.
    Table,
    /// The tables with more columns.
    Wide,
    /// One JSON document on stdout.
    Json,
    /// One YAML document on stdout.
    Yaml,
}

impl Format {
    /// JSON and YAML carry a machine-readable document on stdout, so human
    /// text (warnings, progress, prompts) must go to stderr.
    pub fn is_machine_readable(self) -> bool {
        matches!(self, Format::Json | Format::Yaml)
    }
}

/// The facts about the process's environment the output depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Environment {
    /// `--no-color` was given.
    pub no_color_flag: bool,
    /// `NO_COLOR` is set to a non-empty value.
    pub no_color_env: bool,
    /// `TERM=dumb`: a terminal that understands no escape sequence.
    pub term_dumb: bool,
    pub stdin_terminal: bool,
    pub stdout_terminal: bool,
    pub stderr_terminal: bool,
    /// The terminal's width in columns, per stream, when it is one and says.
    pub stdout_columns: Option<usize>,
    pub stderr_columns: Option<usize>,
}

impl Environment {
    /// Read the facts from this process (`no_color_flag` from the parsed flags).
    pub fn detect(no_color_flag: bool) -> Self {
        let columns =
            |terminal: bool, size: Option<(terminal_size::Width, terminal_size::Height)>| {
                size.filter(|_| terminal)
                    .map(|(terminal_size::Width(w), _)| usize::from(w))
                    .filter(|w| *w > 0)
            };
        let stdout_terminal = std::io::stdout().is_terminal();
        let stderr_terminal = std::io::stderr().is_terminal();
        Environment {
            no_color_flag,
            no_color_env: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            term_dumb: std::env::var_os("TERM").is_some_and(|t| t == "dumb"),
            stdin_terminal: std::io::stdin().is_terminal(),
            stdout_terminal,
            stderr_terminal,
            stdout_columns: columns(
                stdout_terminal,
                terminal_size::terminal_size_of(std::io::stdout()),
            ),
            stderr_columns: columns(
                stderr_terminal,
                terminal_size::terminal_size_of(std::io::stderr()),
            ),
        }
    }
}

/// Cursor home, then clear to the end of the screen (ECMA-48 CUP and ED):
/// what [`Output::redraw`] sends before a screen.
pub const CLEAR_SCREEN: &str = "\x1b[H\x1b[J";

/// The width assumed for a terminal that does not report its size.
pub const FALLBACK_COLUMNS: usize = 100;

/// What the output does, decided once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub color_stdout: bool,
    pub color_stderr: bool,
    /// indicatif bars on stderr (else one line per progress event).
    pub progress_bars: bool,
    /// The width text on stdout is laid out for; `None`: no limit (not a terminal).
    pub width_stdout: Option<usize>,
    /// The same for stderr.
    pub width_stderr: Option<usize>,
    /// Whether a question can be asked (stdin is a terminal).
    pub stdin_terminal: bool,
    /// Whether stdout is a terminal that takes escape codes, so a screen can
    /// be redrawn in place ([`Output::redraw`]).
    pub redraw: bool,
}

impl Settings {
    /// The decisions for an environment.
    pub fn for_environment(env: &Environment) -> Self {
        let color_allowed = !env.no_color_flag && !env.no_color_env && !env.term_dumb;
        let width = |terminal: bool, columns: Option<usize>| {
            terminal.then(|| columns.unwrap_or(FALLBACK_COLUMNS))
        };
        Settings {
            color_stdout: color_allowed && env.stdout_terminal,
            color_stderr: color_allowed && env.stderr_terminal,
            progress_bars: env.stderr_terminal && !env.term_dumb,
            width_stdout: width(env.stdout_terminal, env.stdout_columns),
            width_stderr: width(env.stderr_terminal, env.stderr_columns),
            stdin_terminal: env.stdin_terminal,
            redraw: env.stdout_terminal && !env.term_dumb,
        }
    }

    /// Colour off, no bars, no terminal, text at `width` (`None`: unlimited):
    /// what tests and pipes get.
    pub fn plain(width: Option<usize>) -> Self {
        Settings {
            color_stdout: false,
            color_stderr: false,
            progress_bars: false,
            width_stdout: width,
            width_stderr: width,
            stdin_terminal: false,
            redraw: false,
        }
    }
}

/// One output stream, shared by every clone of the [`Output`] and by the
/// progress reporters of concurrent tasks.
pub(crate) type SharedWriter = Arc<Mutex<Box<dyn Write + Send>>>;

/// The answer to a yes/no question (`ask(question)`).
type Prompter = Arc<dyn Fn(&str) -> anyhow::Result<bool> + Send + Sync>;

/// The output of one run. Cheap to clone; clones share the streams.
#[derive(Clone)]
pub struct Output {
    format: Format,
    settings: Settings,
    stdout: SharedWriter,
    stderr: SharedWriter,
    prompter: Prompter,
    /// While progress bars are drawn, stderr lines are printed above them.
    bars: progress::ActiveBars,
    /// Documents held back to be printed as one List (see [`Output::collecting`]).
    held: Option<Arc<Mutex<Vec<serde_json::Value>>>>,
    /// Documents of a stream printed so far ([`Output::print_stream_document`]).
    streamed: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("format", &self.format)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Output {
    /// The process's stdout and stderr, with the settings its environment
    /// calls for; questions are asked on the terminal (dialoguer, on stderr).
    pub fn from_env(format: Format, no_color_flag: bool) -> Self {
        let settings = Settings::for_environment(&Environment::detect(no_color_flag));
        Output::with_writers(
            format,
            settings,
            Box::new(std::io::stdout()),
            Box::new(std::io::stderr()),
        )
        .with_prompter(|question| {
            dialoguer::Confirm::new()
                .with_prompt(question)
                .default(false)
                .interact()
                .map_err(|err| anyhow::anyhow!("reading the answer to {question:?}: {err}"))
        })
    }

    /// Any two writers with the given settings. Questions are refused until
    /// [`Output::with_prompter`] says how to answer them.
    pub fn with_writers(
        format: Format,
        settings: Settings,
        stdout: Box<dyn Write + Send>,
        stderr: Box<dyn Write + Send>,
    ) -> Self {
        Output {
            format,
            settings,
            stdout: Arc::new(Mutex::new(stdout)),
            stderr: Arc::new(Mutex::new(stderr)),
            prompter: Arc::new(|question| {
                anyhow::bail!("no one can answer {question:?}: stdin is not a terminal")
            }),
            bars: progress::ActiveBars::default(),
            held: None,
            streamed: Arc::default(),
        }
    }

    /// An Output writing into memory: colour off, no bars, no terminal, text
    /// laid out at `width` (`None`: as in a pipe). [`Captured`] reads back
    /// what was written.
    pub fn capture(format: Format, width: Option<usize>) -> (Output, Captured) {
        let captured = Captured::default();
        let output = Output::with_writers(
            format,
            Settings::plain(width),
            Box::new(captured.stdout.clone()),
            Box::new(captured.stderr.clone()),
        );
        (output, captured)
    }

    /// Answer questions with `answer`, as if stdin were a terminal: the
    /// question and the answer are written to stderr as a person would see
    /// them.
    pub fn answering(mut self, answer: bool) -> Self {
        self.settings.stdin_terminal = true;
        let stderr = self.stderr.clone();
        self.with_prompter(move |question| {
            let mut stderr = lock(&stderr);
            let _ = writeln!(
                stderr,
                "{question} [y/N] {}",
                if answer { "y" } else { "n" }
            );
            Ok(answer)
        })
    }

    /// Replace how questions are answered.
    pub fn with_prompter(
        mut self,
        ask: impl Fn(&str) -> anyhow::Result<bool> + Send + Sync + 'static,
    ) -> Self {
        self.prompter = Arc::new(ask);
        self
    }

    /// The format asked for with `-o`.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The decisions this Output was made with.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// `-o json|yaml`.
    pub fn is_machine_readable(&self) -> bool {
        self.format.is_machine_readable()
    }

    /// `-o wide`.
    pub fn is_wide(&self) -> bool {
        self.format == Format::Wide
    }

    /// How text printed on stdout is laid out (width, colour).
    pub fn stdout_layout(&self) -> Layout {
        Layout {
            width: self.settings.width_stdout,
            color: self.settings.color_stdout,
        }
    }

    /// How text printed on stderr is laid out.
    pub fn stderr_layout(&self) -> Layout {
        Layout {
            width: self.settings.width_stderr,
            color: self.settings.color_stderr,
        }
    }

    /// The layout for a verb's human text (its plan, its report): stdout
    /// with a table format, stderr beside a JSON/YAML document.
    pub fn text_layout(&self) -> Layout {
        if self.is_machine_readable() {
            self.stderr_layout()
        } else {
            self.stdout_layout()
        }
    }

    /// Write the result text (a table) to stdout, ending with a newline.
    pub fn print_text(&self, text: &str) -> anyhow::Result<()> {
        let mut stdout = lock(&self.stdout);
        stdout
            .write_all(text.as_bytes())
            .context("writing to stdout")?;
        if !text.ends_with('\n') {
            stdout.write_all(b"\n").context("writing to stdout")?;
        }
        stdout.flush().context("writing to stdout")
    }

    /// Write `document` to stdout as JSON or YAML (per `-o`).
    pub fn print_document<T: Serialize>(&self, document: &T) -> anyhow::Result<()> {
        if let Some(held) = &self.held {
            let value = serde_json::to_value(document).context("writing JSON")?;
            lock(held).push(value);
            return Ok(());
        }
        if self.format == Format::Yaml {
            let text = render_document(document, self.format)?;
            return self.print_text(&text);
        }
        // JSON is written as it is serialised: a report of 50,000 workloads
        // never sits in memory a second time as one string.
        let mut stdout = lock(&self.stdout);
        let mut writer = std::io::BufWriter::with_capacity(64 * 1024, &mut *stdout);
        serde_json::to_writer_pretty(&mut writer, document)
            .map_err(std::io::Error::from)
            .and_then(|()| writer.write_all(b"\n"))
            .and_then(|()| writer.flush())
            .context("writing to stdout")?;
        drop(writer);
        stdout.flush().context("writing to stdout")
    }

    /// One document of a stream on stdout (`status --watch -o json|yaml`),
    /// as `kubectl get -w -o json|yaml` prints one per change: JSON documents
    /// one after the other (`jq` reads such a stream), YAML documents with a
    /// `---` line before each one after the first, as kubectl's YAML printer
    /// separates them.
    pub fn print_stream_document<T: Serialize>(&self, document: &T) -> anyhow::Result<()> {
        let count = self
            .streamed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut text = render_document(document, self.format)?;
        if count > 0 && self.format == Format::Yaml {
            text.insert_str(0, "---\n");
        }
        self.print_text(&text)
    }

    /// Show `text` as the whole screen: at a terminal that takes escape
    /// codes ([`Settings::redraw`]) the cursor goes home and the screen is
    /// cleared first, so the text replaces what was there; anywhere else
    /// (a pipe, `TERM=dumb`) it is printed after what came before, with no
    /// escape byte.
    pub fn redraw(&self, text: &str) -> anyhow::Result<()> {
        if self.settings.redraw {
            let mut stdout = lock(&self.stdout);
            stdout
                .write_all(CLEAR_SCREEN.as_bytes())
                .context("writing to stdout")?;
        }
        self.print_text(text)
    }

    /// An Output whose documents are held back until [`Output::print_held`]:
    /// a run that chains two verbs (`relabel --restart`) still prints one
    /// document on stdout, a `List` of both reports.
    pub fn collecting(&self) -> Output {
        Output {
            held: Some(Arc::new(Mutex::new(Vec::new()))),
            ..self.clone()
        }
    }

    /// Print what was held back: nothing, the one document, or a `List`.
    pub fn print_held(&self) -> anyhow::Result<()> {
        let Some(held) = &self.held else {
            return Ok(());
        };
        let items = std::mem::take(&mut *lock(held));
        let printer = Output {
            held: None,
            ..self.clone()
        };
        match items.len() {
            0 => Ok(()),
            1 => printer.print_document(&items[0]),
            _ => printer.print_document(&serde_json::json!({
                "apiVersion": "mesh-upgrade/v1",
                "kind": "List",
                "items": items,
            })),
        }
    }

    /// A warning for the person reading: always on stderr.
    /// Like an error, one line whatever its length, so a script or `grep`
    /// finds it whole.
    pub fn warn(&self, message: &str) {
        let prefix = self.paint_stderr("warning:", "33");
        self.stderr_line(&format!("{prefix} {message}"));
    }

    /// A note for the person reading (progress, hints): always on stderr,
    /// wrapped at a terminal's width like every sentence.
    pub fn note(&self, message: &str) {
        self.stderr_line(&self.wrapped_for_stderr(message));
    }

    /// The one line an error ends the run with, on stderr.
    pub fn error(&self, err: &anyhow::Error) {
        let prefix = self.paint_stderr("error:", "31");
        self.stderr_line(&format!("{prefix} {err:#}"));
    }

    /// `text` with each of its lines wrapped at spaces to stderr's width
    /// (a terminal's; a pipe gets it unwrapped), commands kept whole. An
    /// indented line (one item of a list) continues two columns further in,
    /// so its continuation is not read as the next item.
    fn wrapped_for_stderr(&self, text: &str) -> String {
        wrap_lines(text, self.settings.width_stderr)
    }

    /// Text a library prepared for one stream as a whole (clap's help and
    /// usage errors): to stdout, or with `to_stderr` to stderr, as it is.
    pub fn print_raw(&self, text: &str, to_stderr: bool) -> anyhow::Result<()> {
        let writer = if to_stderr {
            &self.stderr
        } else {
            &self.stdout
        };
        let mut writer = lock(writer);
        writer
            .write_all(text.as_bytes())
            .and_then(|()| writer.flush())
            .context(if to_stderr {
                "writing to stderr"
            } else {
                "writing to stdout"
            })
    }

    /// Show a writing verb's plan before anything is asked or written: the
    /// text on stdout for a person; with `-o json|yaml` the text goes to
    /// stderr and stdout keeps its one document, which for a client dry run
    /// is the plan itself (nothing else will follow). `text` renders it with
    /// [`Output::text_layout`], only when it is shown.
    pub fn show_plan<T: Serialize>(
        &self,
        plan: &T,
        text: impl FnOnce() -> String,
        client_dry_run: bool,
    ) -> anyhow::Result<()> {
        if !self.is_machine_readable() {
            return self.print_text(&text());
        }
        if client_dry_run {
            // The text is made only when shown: a plan of 25,000 workloads
            // rendered as a table nobody reads was a third of a
            // machine-readable dry run's allocations.
            self.print_document(plan)
        } else {
            self.note(text().trim_end());
            Ok(())
        }
    }

    /// Whether a question can be asked: stdin is a terminal.
    pub fn stdin_is_terminal(&self) -> bool {
        self.settings.stdin_terminal
    }

    /// Ask a yes/no question (default no) on stderr and read the answer.
    pub fn ask(&self, question: &str) -> anyhow::Result<bool> {
        (self.prompter)(question)
    }

    /// Progress of `total` units of work (workloads) on stderr: bars on a
    /// terminal, one line per event otherwise. Lines written through this
    /// Output while the bars are drawn appear above them.
    pub fn progress(&self, total: usize) -> Progress {
        self.progress_of(total, "workloads")
    }

    /// [`Output::progress`] counting other units than workloads (`nodes`).
    pub fn progress_of(&self, total: usize, unit: &str) -> Progress {
        Progress::new(
            self.settings.progress_bars,
            total,
            unit,
            self.stderr.clone(),
            self.bars.clone(),
            self.settings.width_stderr,
        )
    }

    /// A writer for log lines (`-v`): stderr, above the progress bars.
    pub fn log_writer(&self) -> impl Fn() -> LogWriter + Send + Sync + 'static {
        let writer = LogWriter {
            stderr: self.stderr.clone(),
            bars: self.bars.clone(),
        };
        move || writer.clone()
    }

    fn paint_stderr(&self, text: &str, ansi: &str) -> String {
        if self.settings.color_stderr {
            format!("\x1b[{ansi}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// One line on stderr; a failed write has nowhere better to be reported.
    fn stderr_line(&self, line: &str) {
        progress::write_line(&self.stderr, &self.bars, line);
    }
}

/// `text` with each of its lines wrapped at spaces to `width` (`None`, a
/// pipe: unwrapped), commands kept whole. An indented line (one item of a
/// list) continues two columns further in, so its continuation is not read
/// as the next item. Notes and the engine's progress notes share it.
pub(crate) fn wrap_lines(text: &str, width: Option<usize>) -> String {
    let Some(width) = width else {
        return text.to_string();
    };
    let wrap = crate::wrap::Wrap::at(width).keeping_commands_whole();
    text.split('\n')
        .map(|line| {
            let margin = line.len() - line.trim_start_matches(' ').len();
            let indent = if margin == 0 {
                String::new()
            } else {
                " ".repeat(margin + 2)
            };
            wrap.text(line, &indent).trim_end_matches('\n').to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Log lines to the output's stderr; clone one per event.
#[derive(Clone)]
pub struct LogWriter {
    stderr: SharedWriter,
    bars: progress::ActiveBars,
}

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        progress::write_bytes(&self.stderr, &self.bars, bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        lock(&self.stderr).flush()
    }
}

/// The writer lock; a panic while holding it leaves the writer usable.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A growable in-memory stream that clones share.
#[derive(Clone, Default)]
pub struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }
}

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What an [`Output::capture`] Output wrote.
#[derive(Clone, Default)]
pub struct Captured {
    pub stdout: Buffer,
    pub stderr: Buffer,
}

impl Captured {
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }
}

/// Serialize `document` for a machine-readable format. Table formats are a
/// caller bug here, reported as JSON so nothing is lost.
pub fn render_document<T: Serialize>(document: &T, format: Format) -> anyhow::Result<String> {
    match format {
        Format::Yaml => serde_yaml::to_string(document).context("writing YAML"),
        Format::Json | Format::Table | Format::Wide => {
            let mut text = serde_json::to_string_pretty(document).context("writing JSON")?;
            text.push('\n');
            Ok(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc {
        api_version: &'static str,
        items: Vec<u32>,
    }

    fn terminal() -> Environment {
        Environment {
            stdin_terminal: true,
            stdout_terminal: true,
            stderr_terminal: true,
            stdout_columns: Some(132),
            stderr_columns: Some(120),
            ..Environment::default()
        }
    }

    #[test]
    fn json_documents_are_pretty_and_end_with_a_newline() {
        let text = render_document(
            &Doc {
                api_version: "v1",
                items: vec![1],
            },
            Format::Json,
        )
        .unwrap();
        assert!(text.starts_with("{\n  \"apiVersion\": \"v1\""), "{text}");
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn yaml_documents_use_the_same_field_names() {
        let text = render_document(
            &Doc {
                api_version: "v1",
                items: vec![1, 2],
            },
            Format::Yaml,
        )
        .unwrap();
        assert_eq!(text, "apiVersion: v1\nitems:\n- 1\n- 2\n");
    }

    #[test]
    fn notes_wrap_at_a_terminals_width_keeping_commands_whole_warnings_do_not() {
        let (output, captured) = Output::capture(Format::Table, Some(40));
        output.note(
            "--restart: running pods keep their proxy; `kubectl mesh-upgrade status -A` shows them",
        );
        output.warn("interrupted after relabelling shop and cart");
        assert_eq!(
            captured.stderr(),
            "--restart: running pods keep their\n\
             proxy; `kubectl mesh-upgrade status -A`\n\
             shows them\n\
             warning: interrupted after relabelling shop and cart\n"
        );

        let (output, captured) = Output::capture(Format::Table, Some(30));
        output.note("  endpoints: 0 Ready; 2 from other pods (a, b)");
        assert_eq!(
            captured.stderr(),
            "  endpoints: 0 Ready; 2 from\n    other pods (a, b)\n",
            "an item's continuation is indented under it"
        );

        let (output, captured) = Output::capture(Format::Table, None);
        let long = "a sentence ".repeat(20);
        output.note(&long);
        assert_eq!(
            captured.stderr(),
            format!("{long}\n"),
            "a pipe gets it whole"
        );
    }

    #[test]
    fn a_terminal_gets_colour_bars_and_its_own_width() {
        let settings = Settings::for_environment(&terminal());
        assert!(settings.color_stdout && settings.color_stderr);
        assert!(settings.progress_bars);
        assert_eq!(settings.width_stdout, Some(132));
        assert_eq!(settings.width_stderr, Some(120));
        assert!(settings.stdin_terminal);
    }

    #[test]
    fn a_pipe_gets_no_colour_no_bars_and_no_width_limit() {
        let settings = Settings::for_environment(&Environment::default());
        assert_eq!(settings, Settings::plain(None));
        let stdout_piped = Settings::for_environment(&Environment {
            stdout_terminal: false,
            stdout_columns: None,
            ..terminal()
        });
        assert!(!stdout_piped.color_stdout && stdout_piped.color_stderr);
        assert_eq!(stdout_piped.width_stdout, None);
        assert!(stdout_piped.progress_bars, "stderr is still a terminal");
    }

    #[test]
    fn term_dumb_at_a_terminal_gets_no_colour_and_no_progress_bar() {
        let settings = Settings::for_environment(&Environment {
            term_dumb: true,
            ..terminal()
        });
        assert!(!settings.color_stdout && !settings.color_stderr);
        assert!(!settings.progress_bars);
        assert_eq!(settings.width_stdout, Some(132), "the width still counts");
    }

    #[test]
    fn no_color_and_the_flag_turn_colour_off_but_keep_the_bars() {
        for env in [
            Environment {
                no_color_env: true,
                ..terminal()
            },
            Environment {
                no_color_flag: true,
                ..terminal()
            },
        ] {
            let settings = Settings::for_environment(&env);
            assert!(!settings.color_stdout && !settings.color_stderr, "{env:?}");
            assert!(settings.progress_bars, "{env:?}");
        }
    }

    #[test]
    fn a_terminal_that_does_not_say_its_width_is_taken_as_a_hundred_columns() {
        let settings = Settings::for_environment(&Environment {
            stdout_columns: None,
            ..terminal()
        });
        assert_eq!(settings.width_stdout, Some(FALLBACK_COLUMNS));
    }

    #[test]
    fn a_plan_is_rendered_as_text_only_where_the_text_is_shown() {
        let rendered = std::cell::Cell::new(0);
        let text = || {
            rendered.set(rendered.get() + 1);
            "PLAN\n".to_string()
        };
        let plan = serde_json::json!({"kind": "Plan"});

        // -o json --dry-run: the plan is the document; no text is made.
        let (output, captured) = Output::capture(Format::Json, None);
        output.show_plan(&plan, text, true).unwrap();
        assert_eq!(rendered.get(), 0);
        assert!(captured.stdout().contains("\"kind\": \"Plan\""));
        assert_eq!(captured.stderr(), "");

        // -o json before writing: the text goes to stderr.
        let (output, captured) = Output::capture(Format::Json, None);
        output.show_plan(&plan, text, false).unwrap();
        assert_eq!(rendered.get(), 1);
        assert_eq!(
            (captured.stdout(), captured.stderr()),
            (String::new(), "PLAN\n".to_string())
        );

        // A table: the text is the output.
        let (output, captured) = Output::capture(Format::Table, None);
        output.show_plan(&plan, text, true).unwrap();
        assert_eq!(rendered.get(), 2);
        assert_eq!(captured.stdout(), "PLAN\n");
    }

    #[test]
    fn captured_output_separates_the_result_from_the_notes() {
        let (output, captured) = Output::capture(Format::Table, Some(80));
        output.print_text("TABLE").unwrap();
        output.warn("careful");
        output.note("a note");
        output.error(&anyhow::anyhow!("it broke"));
        assert_eq!(captured.stdout(), "TABLE\n");
        assert_eq!(
            captured.stderr(),
            "warning: careful\na note\nerror: it broke\n"
        );
        assert_eq!(output.stdout_layout().width, Some(80));
        assert!(!output.stdout_layout().color);
    }

    #[test]
    fn collected_documents_print_as_one_list() {
        let (output, captured) = Output::capture(Format::Json, None);
        let collecting = output.collecting();
        collecting
            .print_document(&serde_json::json!({"kind": "A"}))
            .unwrap();
        collecting
            .print_document(&serde_json::json!({"kind": "B"}))
            .unwrap();
        assert_eq!(captured.stdout(), "");
        collecting.print_held().unwrap();
        let list: serde_json::Value = serde_json::from_str(&captured.stdout()).unwrap();
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"][1]["kind"], "B");
    }

    #[test]
    fn only_a_terminal_that_takes_escape_codes_is_redrawn() {
        assert!(Settings::for_environment(&terminal()).redraw);
        for env in [
            Environment::default(),
            Environment {
                term_dumb: true,
                ..terminal()
            },
            Environment {
                stdout_terminal: false,
                ..terminal()
            },
        ] {
            assert!(!Settings::for_environment(&env).redraw, "{env:?}");
        }
        assert!(
            Settings::for_environment(&Environment {
                no_color_env: true,
                ..terminal()
            })
            .redraw,
            "NO_COLOR is about colour, not about moving the cursor"
        );
    }

    #[test]
    fn a_redraw_clears_the_screen_at_a_terminal_and_appends_elsewhere() {
        let (piped, captured) = Output::capture(Format::Table, None);
        piped.redraw("one").unwrap();
        piped.redraw("two").unwrap();
        assert_eq!(captured.stdout(), "one\ntwo\n");

        let captured = Captured::default();
        let terminal = Output::with_writers(
            Format::Table,
            Settings {
                redraw: true,
                ..Settings::plain(Some(80))
            },
            Box::new(captured.stdout.clone()),
            Box::new(captured.stderr.clone()),
        );
        terminal.redraw("one").unwrap();
        terminal.redraw("two").unwrap();
        assert_eq!(
            captured.stdout(),
            format!("{CLEAR_SCREEN}one\n{CLEAR_SCREEN}two\n")
        );
    }

    #[test]
    fn a_stream_of_documents_is_json_after_json_or_yaml_separated_by_dashes() {
        let (json, captured) = Output::capture(Format::Json, None);
        json.print_stream_document(&serde_json::json!({"n": 1}))
            .unwrap();
        json.print_stream_document(&serde_json::json!({"n": 2}))
            .unwrap();
        let documents: Vec<serde_json::Value> =
            serde_json::Deserializer::from_str(&captured.stdout())
                .into_iter()
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[1]["n"], 2);

        let (yaml, captured) = Output::capture(Format::Yaml, None);
        yaml.print_stream_document(&serde_json::json!({"n": 1}))
            .unwrap();
        yaml.print_stream_document(&serde_json::json!({"n": 2}))
            .unwrap();
        assert_eq!(captured.stdout(), "n: 1\n---\nn: 2\n");
    }

    #[test]
    fn questions_are_refused_unless_someone_answers() {
        let (output, captured) = Output::capture(Format::Table, None);
        assert!(!output.stdin_is_terminal());
        assert!(output.ask("Go?").is_err());
        let output = output.answering(true);
        assert!(output.stdin_is_terminal());
        assert!(output.ask("Go?").unwrap());
        assert_eq!(captured.stderr(), "Go? [y/N] y\n");
    }

    #[test]
    fn machine_formats_lay_out_human_text_for_stderr() {
        let output = Output::with_writers(
            Format::Json,
            Settings {
                width_stdout: None,
                width_stderr: Some(90),
                ..Settings::plain(None)
            },
            Box::new(std::io::sink()),
            Box::new(std::io::sink()),
        );
        assert_eq!(output.text_layout().width, Some(90));
    }
}
