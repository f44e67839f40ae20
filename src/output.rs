//! Where output goes and how it looks.
//!
//! stdout carries the result: a table, or one JSON/YAML document that a
//! pipeline can parse. Everything meant for a person reading along — warnings,
//! progress, notes — goes to stderr, always, so `-o json | jq` never sees it.
//!
//! Colour is a property of each stream: on only when that stream is a
//! terminal, `--no-color` was not given and `NO_COLOR` is unset or empty
//! (<https://no-color.org>). Rendering functions take a `color: bool` and are
//! pure; this module decides the bool and does the writing.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::rc::Rc;

use anyhow::Context as _;
use serde::Serialize;

use crate::cli::OutputFormat;

/// The output settings of one run.
#[derive(Debug, Clone)]
pub struct Output {
    pub format: OutputFormat,
    /// Colour on stdout.
    pub color_stdout: bool,
    /// Colour on stderr.
    pub color_stderr: bool,
    /// Documents held back to be printed as one List (see [`Output::collecting`]).
    held: Option<Rc<RefCell<Vec<serde_json::Value>>>>,
}

impl Output {
    /// Settings from the flags and the environment.
    pub fn new(format: OutputFormat, no_color_flag: bool) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let allowed = !no_color_flag && !no_color_env;
        Output {
            format,
            color_stdout: allowed && std::io::stdout().is_terminal(),
            color_stderr: allowed && std::io::stderr().is_terminal(),
            held: None,
        }
    }

    /// Settings with colour off on both streams (tests, machine output).
    pub fn plain(format: OutputFormat) -> Self {
        Output {
            format,
            color_stdout: false,
            color_stderr: false,
            held: None,
        }
    }

    /// `-o wide`.
    pub fn is_wide(&self) -> bool {
        self.format == OutputFormat::Wide
    }

    /// Write the result text (a table) to stdout.
    pub fn print_text(&self, text: &str) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
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
            held.borrow_mut().push(value);
            return Ok(());
        }
        let text = render_document(document, self.format)?;
        self.print_text(&text)
    }

    /// An Output whose documents are held back until [`Output::print_held`]:
    /// a run that chains two verbs (`relabel --restart`) still prints one
    /// document on stdout, a `List` of both reports.
    pub fn collecting(&self) -> Output {
        Output {
            held: Some(Rc::new(RefCell::new(Vec::new()))),
            ..self.clone()
        }
    }

    /// Print what was held back: nothing, the one document, or a `List`.
    pub fn print_held(&self) -> anyhow::Result<()> {
        let Some(held) = &self.held else {
            return Ok(());
        };
        let items = std::mem::take(&mut *held.borrow_mut());
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
    pub fn warn(&self, message: &str) {
        let prefix = if self.color_stderr {
            "\x1b[33mwarning:\x1b[0m"
        } else {
            "warning:"
        };
        // A failed write to stderr has nowhere better to be reported.
        let _ = writeln!(std::io::stderr().lock(), "{prefix} {message}");
    }

    /// A note for the person reading (progress, hints): always on stderr.
    pub fn note(&self, message: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{message}");
    }

    /// Show a writing verb's plan before anything is asked or written: the
    /// text on stdout for a person; with `-o json|yaml` the text goes to
    /// stderr and stdout keeps its one document, which for a client dry run
    /// is the plan itself (nothing else will follow).
    pub fn show_plan<T: Serialize>(
        &self,
        plan: &T,
        text: &str,
        client_dry_run: bool,
    ) -> anyhow::Result<()> {
        if !self.format.is_machine_readable() {
            return self.print_text(text);
        }
        if client_dry_run {
            self.print_document(plan)
        } else {
            self.note(text.trim_end());
            Ok(())
        }
    }
}

/// Serialize `document` for a machine-readable format. Table formats are a
/// caller bug here, reported as JSON so nothing is lost.
pub fn render_document<T: Serialize>(document: &T, format: OutputFormat) -> anyhow::Result<String> {
    match format {
        OutputFormat::Yaml => serde_yaml::to_string(document).context("writing YAML"),
        OutputFormat::Json | OutputFormat::Table | OutputFormat::Wide => {
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

    #[test]
    fn json_documents_are_pretty_and_end_with_a_newline() {
        let text = render_document(
            &Doc {
                api_version: "v1",
                items: vec![1],
            },
            OutputFormat::Json,
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
            OutputFormat::Yaml,
        )
        .unwrap();
        assert_eq!(text, "apiVersion: v1\nitems:\n- 1\n- 2\n");
    }
}
