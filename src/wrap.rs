//! Word wrapping for the text a person reads: one greedy wrap at spaces for
//! every renderer (sentences and the free-text cells of tables). Pure.
//!
//! A width of `None` (a pipe) means no wrapping at all. A word is never
//! broken, and text joined with [`NO_BREAK`] (see [`unbreakable`]) is one
//! word: that is how a name or a command inside a sentence stays whole.

/// A no-break space: wrapping never breaks a line there, and it is printed
/// as a plain space.
pub const NO_BREAK: char = '\u{a0}';

/// `text` as one word for [`Wrap`]: its spaces become [`NO_BREAK`].
pub fn unbreakable(text: &str) -> String {
    text.replace(' ', "\u{a0}")
}

/// A space wrapping avoids: a line breaks there only when the words it joins
/// do not fit on one line together. Printed as a plain space.
pub const KEEP_TOGETHER: char = '\u{202f}';

/// `text` kept on one line where it fits (an item of a list such as
/// "single replica, no PDB"): its spaces become [`KEEP_TOGETHER`].
pub fn together(text: &str) -> String {
    text.replace(' ', "\u{202f}")
}

/// How sentences wrap: the width, and whether a `backticked command` may be
/// broken across lines.
///
/// [`Wrap::push`] breaks only at a space, before a word that would make the
/// line wider than the width. The text's leading spaces start the first line
/// (and count toward the width); each later line starts with the indent the
/// caller gives. Runs of spaces inside a line (aligned columns) are kept, a
/// line's trailing spaces are dropped, and a word longer than a line stays
/// whole.
#[derive(Debug, Clone, Copy)]
pub struct Wrap {
    width: usize,
    commands_whole: bool,
}

impl Wrap {
    /// Lines of at most `width` columns, where the words allow.
    pub const fn at(width: usize) -> Self {
        Wrap {
            width,
            commands_whole: false,
        }
    }

    /// Lines of at most `width` columns, or unwrapped lines for `None`.
    pub const fn to(width: Option<usize>) -> Self {
        match width {
            Some(width) => Wrap::at(width),
            None => Wrap::at(usize::MAX),
        }
    }

    /// Also keep each `backticked command` on one line, so a person can copy
    /// it as it stands.
    pub const fn keeping_commands_whole(self) -> Self {
        Wrap {
            commands_whole: true,
            ..self
        }
    }

    /// Append `text` wrapped, each continuation line starting with `indent`,
    /// and a newline.
    pub fn push(&self, out: &mut String, text: &str, indent: &str) {
        let loosened;
        let text = if text.contains(KEEP_TOGETHER) {
            loosened = self.loosen(text);
            loosened.as_str()
        } else {
            text
        };
        let words = text.trim_start_matches(' ');
        let mut line = text[..text.len() - words.len()].to_string();
        for (i, word) in self.words(words).iter().enumerate() {
            if i == 0 {
                line.push_str(word);
            } else if !word.is_empty()
                && (line.chars().count() + 1).saturating_add(word.chars().count()) > self.width
            {
                push_line(out, &line);
                line = format!("{indent}{word}");
            } else {
                line.push(' ');
                line.push_str(word);
            }
        }
        push_line(out, &line);
    }

    /// [`Wrap::push`] into a new string.
    pub fn text(&self, text: &str, indent: &str) -> String {
        let mut out = String::new();
        self.push(&mut out, text, indent);
        out
    }

    /// `text` with the [`KEEP_TOGETHER`] groups that are wider than a line
    /// split into their words.
    fn loosen(&self, text: &str) -> String {
        text.split(' ')
            .map(|group| {
                if group.chars().count() > self.width {
                    group.replace(KEEP_TOGETHER, " ")
                } else {
                    group.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `text` split at each space (an empty word between two spaces), but
    /// with a backticked command as one word when commands stay whole.
    fn words<'a>(&self, text: &'a str) -> Vec<&'a str> {
        let mut words: Vec<&'a str> = Vec::new();
        // Where the word being built starts, while inside a command.
        let mut command_start = None;
        let mut offset = 0;
        for word in text.split(' ') {
            let start = offset;
            offset += word.len() + 1;
            match command_start {
                Some(from) => {
                    words.pop();
                    words.push(&text[from..start + word.len()]);
                }
                None => words.push(word),
            }
            if self.commands_whole && word.matches('`').count() % 2 == 1 {
                command_start = match command_start {
                    Some(_) => None,
                    None => Some(start),
                };
            }
        }
        words
    }
}

/// One finished line: trailing spaces dropped, no-break spaces printed as spaces.
fn push_line(out: &mut String, line: &str) {
    let line = line.trim_end();
    if line.contains([NO_BREAK, KEEP_TOGETHER]) {
        out.push_str(&line.replace([NO_BREAK, KEEP_TOGETHER], " "));
    } else {
        out.push_str(line);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDTH: usize = 100;

    #[test]
    fn long_notes_wrap_at_spaces_with_an_indent() {
        let wrap = Wrap::at(WIDTH).keeping_commands_whole();
        let text = format!("  ns/deployment/x: {}", "word ".repeat(30));
        let wrapped = wrap.text(text.trim_end(), "    ");
        let lines: Vec<&str> = wrapped.lines().collect();
        assert_eq!(lines.len(), 2, "{wrapped}");
        assert!(lines[0].starts_with("  ns/deployment/x: word"));
        assert!(lines[1].starts_with("    word"));
        assert!(lines.iter().all(|l| l.chars().count() <= 100));
        let command = format!(
            "{} run `kubectl rollout resume deployment/x -n y` then",
            "word ".repeat(16)
        );
        let wrapped = wrap.text(&command, "    ");
        assert!(
            wrapped.contains("`kubectl rollout resume deployment/x -n y`"),
            "{wrapped}"
        );
    }

    #[test]
    fn wrapping_keeps_words_whole_and_indents_continuations() {
        let mut out = String::new();
        let long = "word ".repeat(30);
        Wrap::at(WIDTH).push(&mut out, long.trim(), "  ");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].len() <= WIDTH);
        assert!(lines[1].starts_with("  word"));
    }

    #[test]
    fn long_sentences_wrap_under_their_indent() {
        let mut out = String::new();
        let text = format!("{} {}", "word ".repeat(30).trim(), "end");
        Wrap::at(WIDTH).push(&mut out, &text, "    ");
        for line in out.lines() {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
        assert!(out.lines().nth(1).unwrap().starts_with("    word"), "{out}");
    }

    #[test]
    fn without_a_width_nothing_wraps() {
        let long = "word ".repeat(100);
        let wrapped = Wrap::to(None).text(long.trim(), "  ");
        assert_eq!(wrapped.lines().count(), 1);
        assert_eq!(Wrap::to(Some(20)).text(long.trim(), "").lines().count(), 25);
    }

    #[test]
    fn items_kept_together_break_inside_only_when_wider_than_a_line() {
        let text = format!("{}, {}", together("single replica"), together("no PDB"));
        assert_eq!(Wrap::at(18).text(&text, ""), "single replica,\nno PDB\n");
        assert_eq!(Wrap::at(10).text(&text, ""), "single\nreplica,\nno PDB\n");
        assert_eq!(Wrap::to(None).text(&text, ""), "single replica, no PDB\n");
    }

    #[test]
    fn unbreakable_text_stays_on_one_line_and_prints_plain_spaces() {
        let text = format!(
            "run {} when ready",
            unbreakable("kubectl delete pod debug-shell -n pay")
        );
        let wrapped = Wrap::at(20).text(&text, "");
        assert_eq!(
            wrapped,
            "run\nkubectl delete pod debug-shell -n pay\nwhen ready\n"
        );
    }
}
