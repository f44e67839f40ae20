//! Word wrapping for the text a person reads: one greedy wrap at spaces for
//! every renderer. Pure.

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
        let words = text.trim_start_matches(' ');
        let mut line = text[..text.len() - words.len()].to_string();
        for (i, word) in self.words(words).iter().enumerate() {
            if i == 0 {
                line.push_str(word);
            } else if !word.is_empty()
                && line.chars().count() + 1 + word.chars().count() > self.width
            {
                out.push_str(line.trim_end());
                out.push('\n');
                line = format!("{indent}{word}");
            } else {
                line.push(' ');
                line.push_str(word);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }

    /// [`Wrap::push`] into a new string.
    pub fn text(&self, text: &str, indent: &str) -> String {
        let mut out = String::new();
        self.push(&mut out, text, indent);
        out
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
}
