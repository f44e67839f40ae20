//! All text a person reads, one file per verb: the model or plan in, a
//! `String` out. Pure: no I/O, no clock, no environment; the width and
//! colour come in as a [`Layout`], decided by the output object.
//!
//! Every table is a [`table::Table`] and every sentence wraps with
//! [`crate::wrap::Wrap`]. Names, images and commands are never broken: in a
//! pipe (`Layout::width` is `None`) nothing wraps at all; at a terminal only
//! free-text columns and sentences wrap, at spaces.

pub mod ambient;
pub mod gateway_api;
pub mod gateway_move;
pub mod gateway_switch;
pub mod relabel;
pub mod restart;
pub mod revision_usage;
pub mod status;
pub mod status_watch;
pub mod table;
pub mod tag;
pub mod ztunnel_roll;

use crate::wrap::{Wrap, unbreakable};

/// How text is laid out: the width it must fit (`None`: any, as in a pipe)
/// and whether it may carry colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub width: Option<usize>,
    pub color: bool,
}

impl Layout {
    /// No width limit, no colour: what a pipe gets.
    pub const fn unlimited() -> Self {
        Layout {
            width: None,
            color: false,
        }
    }

    /// A terminal `width` columns wide, colour off (tests).
    pub const fn at(width: usize) -> Self {
        Layout {
            width: Some(width),
            color: false,
        }
    }

    /// How sentences wrap: at the width, a `backticked command` kept whole.
    pub const fn wrap(&self) -> Wrap {
        Wrap::to(self.width).keeping_commands_whole()
    }

    /// `text` in an SGR style (`"1"` bold, `"32"` green) when colour is on.
    pub fn paint(&self, text: &str, ansi: &str) -> String {
        if self.color {
            format!("\x1b[{ansi}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

pub use crate::duration::human_duration;

/// `text` with each `kubectl …` command in it made one unbreakable word:
/// from `kubectl` up to the next `, `, ` if ` or the end. Wrapping then
/// moves a command to the next line whole instead of splitting it.
pub fn commands_whole(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("kubectl ") {
        out.push_str(&rest[..start]);
        let command = &rest[start..];
        let end = [", ", " if "]
            .iter()
            .filter_map(|sep| command.find(sep))
            .min()
            .unwrap_or(command.len());
        out.push_str(&unbreakable(&command[..end]));
        rest = &command[end..];
    }
    out.push_str(rest);
    out
}

/// `""` for one, `"s"` otherwise.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The tail of an interrupted run's sentence, shared by the writers:
/// `interrupted{how it stopped}; failed: ...; --restart did not run;
/// {what was written and its undo, or that nothing was}`.
pub fn interrupted_tail(
    stopped: &str,
    failed: &[String],
    restart: bool,
    written: &str,
    nothing_written: &str,
) -> String {
    let failed = if failed.is_empty() {
        String::new()
    } else {
        format!("; failed: {}", failed.join(", "))
    };
    let restart = if restart {
        "; --restart did not run"
    } else {
        ""
    };
    let changed = if written.is_empty() {
        format!("; {nothing_written}")
    } else {
        written.to_string()
    };
    format!("interrupted{stopped}{failed}{restart}{changed}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_in_a_sentence_wraps_as_one_word() {
        let text = commands_whole(
            "restart it through its Rollout web, or kubectl delete pod web-1 -n shop if that recreates it",
        );
        let wrapped = Layout::at(40).wrap().text(&text, "");
        assert!(
            wrapped.lines().all(|l| l.chars().count() <= 40),
            "{wrapped}"
        );
        let narrow = Layout::at(20).wrap().text(&text, "");
        assert!(
            narrow.contains("\nkubectl delete pod web-1 -n shop\n"),
            "the command runs past the width rather than break: {narrow}"
        );
        assert_eq!(
            wrapped,
            "restart it through its Rollout web, or\nkubectl delete pod web-1 -n shop if that\nrecreates it\n"
        );
    }

    #[test]
    fn paint_adds_escapes_only_with_colour() {
        assert_eq!(Layout::at(80).paint("x", "1"), "x");
        let colour = Layout {
            color: true,
            ..Layout::at(80)
        };
        assert_eq!(colour.paint("x", "1"), "\x1b[1mx\x1b[0m");
    }
}
