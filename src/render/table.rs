//! The one table style: borderless columns two spaces apart, like kubectl's.
//!
//! Each column is either [`Fit::Whole`] (names, images, versions, labels,
//! commands: never wrapped) or [`Fit::Words`] (free text such as PROBLEMS,
//! RISK, DETAIL, notes). The rule:
//!
//! - no width (a pipe): every row on one line, as wide as it needs;
//! - a width (a terminal): when the rows are wider, only the free-text
//!   columns wrap, at spaces, sharing what the whole columns leave; a word
//!   is never broken, so a line may still run past the width rather than
//!   split a name.
//!
//! comfy-table aligns and colours the cells; the wrapping is
//! [`crate::wrap::Wrap`]'s, done before comfy-table sees them (its own
//! arrangement is off, so it never breaks a cell).

use comfy_table::presets::NOTHING;
use comfy_table::{Attribute, ContentArrangement, TableComponent};

pub use comfy_table::Color;

use super::Layout;
use crate::wrap::{KEEP_TOGETHER, NO_BREAK, Wrap};

/// Spaces between two columns.
const GAP: usize = 2;

/// Whether a column's cells may wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Never wrapped: identifiers, images, versions, commands.
    Whole,
    /// Free text: wraps at spaces when the table is too wide.
    Words,
}

/// One cell: text (lines separated by `\n`) and an optional colour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cell {
    text: String,
    color: Option<Color>,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Self {
        Cell {
            text: text.into(),
            color: None,
        }
    }

    /// The cell in `color` (shown only when the layout allows colour).
    pub fn colored(text: impl Into<String>, color: Color) -> Self {
        Cell {
            text: text.into(),
            color: Some(color),
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell::new(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::new(text)
    }
}

impl From<&String> for Cell {
    fn from(text: &String) -> Self {
        Cell::new(text.clone())
    }
}

/// A table under construction.
#[derive(Debug, Clone)]
pub struct Table {
    layout: Layout,
    header: Option<Vec<String>>,
    fits: Vec<Fit>,
    rows: Vec<Vec<Cell>>,
    indent: usize,
}

impl Table {
    /// A table with a header row: `(title, fit)` per column.
    pub fn new(layout: Layout, columns: &[(&str, Fit)]) -> Self {
        Table {
            layout,
            header: Some(columns.iter().map(|(h, _)| h.to_string()).collect()),
            fits: columns.iter().map(|(_, f)| *f).collect(),
            rows: Vec::new(),
            indent: 0,
        }
    }

    /// A table without a header row (aligned lists).
    pub fn headless(layout: Layout, fits: &[Fit]) -> Self {
        Table {
            layout,
            header: None,
            fits: fits.to_vec(),
            rows: Vec::new(),
            indent: 0,
        }
    }

    /// Every line starts with `spaces` spaces (a list under a heading); the
    /// width counts them.
    pub fn indented(mut self, spaces: usize) -> Self {
        self.indent = spaces;
        self
    }

    /// Add a row; missing cells are empty, extra cells are a caller bug and dropped.
    pub fn row<C: Into<Cell>>(&mut self, cells: impl IntoIterator<Item = C>) {
        let mut row: Vec<Cell> = cells.into_iter().map(Into::into).collect();
        row.resize(self.fits.len(), Cell::default());
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The lines, each ending with a newline, without trailing spaces.
    pub fn render(&self) -> String {
        let widths = self.column_widths();
        let mut table = comfy_table::Table::new();
        table.load_preset(NOTHING);
        for component in [
            TableComponent::VerticalLines,
            TableComponent::LeftBorder,
            TableComponent::RightBorder,
            TableComponent::TopBorder,
            TableComponent::BottomBorder,
            TableComponent::LeftHeaderIntersection,
            TableComponent::HeaderLines,
            TableComponent::MiddleHeaderIntersections,
            TableComponent::RightHeaderIntersection,
            TableComponent::TopBorderIntersections,
            TableComponent::BottomBorderIntersections,
            TableComponent::TopLeftCorner,
            TableComponent::TopRightCorner,
            TableComponent::BottomLeftCorner,
            TableComponent::BottomRightCorner,
            TableComponent::LeftBorderIntersections,
            TableComponent::RightBorderIntersections,
            TableComponent::MiddleIntersections,
            TableComponent::HorizontalLines,
        ] {
            table.remove_style(component);
        }
        table.set_content_arrangement(ContentArrangement::Disabled);
        if self.layout.color {
            table.enforce_styling();
        } else {
            table.force_no_tty();
        }
        if let Some(header) = &self.header {
            table.set_header(header.iter().map(|h| {
                let cell = comfy_table::Cell::new(h);
                if self.layout.color {
                    cell.add_attribute(Attribute::Bold)
                } else {
                    cell
                }
            }));
        }
        for row in &self.rows {
            table.add_row(row.iter().enumerate().map(|(i, cell)| {
                let text = match widths.get(i) {
                    Some(Some(width)) => wrap_cell(&cell.text, *width),
                    _ => cell.text.replace([NO_BREAK, KEEP_TOGETHER], " "),
                };
                let out = comfy_table::Cell::new(text);
                match cell.color {
                    Some(color) if self.layout.color => out.fg(color),
                    _ => out,
                }
            }));
        }
        let last = self.fits.len().saturating_sub(1);
        for (index, column) in table.column_iter_mut().enumerate() {
            column.set_padding((0, if index == last { 0 } else { GAP as u16 }));
        }
        let indent = " ".repeat(self.indent);
        let mut text = String::new();
        for line in table.lines() {
            text.push_str(&indent);
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }

    /// The width each free-text column wraps at (`None`: not wrapped).
    fn column_widths(&self) -> Vec<Option<usize>> {
        let columns = self.fits.len();
        let mut unwrapped = vec![None; columns];
        let Some(width) = self.layout.width else {
            return unwrapped;
        };
        let width = width.saturating_sub(self.indent);
        let header_width = |i: usize| {
            self.header
                .as_ref()
                .map_or(0, |h| h.get(i).map_or(0, |t| t.chars().count()))
        };
        let natural: Vec<usize> = (0..columns)
            .map(|i| {
                self.rows
                    .iter()
                    .flat_map(|row| row[i].text.lines())
                    .map(|l| l.chars().count())
                    .chain([header_width(i)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let gaps = GAP * columns.saturating_sub(1);
        if natural.iter().sum::<usize>() + gaps <= width {
            return unwrapped;
        }
        let free: Vec<usize> = (0..columns)
            .filter(|i| self.fits[*i] == Fit::Words)
            .collect();
        if free.is_empty() {
            return unwrapped;
        }
        let whole: usize = (0..columns)
            .filter(|i| self.fits[*i] == Fit::Whole)
            .map(|i| natural[i])
            .sum();
        let longest_word = |i: usize| {
            self.rows
                .iter()
                .flat_map(|row| row[i].text.split(['\n', ' ', KEEP_TOGETHER]))
                .map(|w| w.chars().count())
                .chain([header_width(i), 1])
                .max()
                .unwrap_or(1)
        };
        // Water-filling: columns that fit in an equal share keep their
        // width and give the rest back; the others share what is left.
        let mut budget = width.saturating_sub(whole + gaps);
        let mut left = free;
        loop {
            let share = budget / left.len().max(1);
            let (fitting, rest): (Vec<usize>, Vec<usize>) =
                left.iter().partition(|i| natural[**i] <= share);
            if fitting.is_empty() {
                // A column whose longest unbreakable word (a command) is
                // wider than the share takes that width; the others share
                // what remains.
                let (unbreakable, breakable): (Vec<usize>, Vec<usize>) =
                    left.iter().partition(|i| longest_word(**i) > share);
                if !unbreakable.is_empty() && !breakable.is_empty() {
                    for i in unbreakable {
                        let width = longest_word(i);
                        unwrapped[i] = Some(width);
                        budget = budget.saturating_sub(width);
                    }
                    left = breakable;
                    continue;
                }
                let extra = budget % left.len().max(1);
                for (k, i) in left.iter().enumerate() {
                    let width = share + usize::from(k < extra);
                    unwrapped[*i] = Some(width.max(longest_word(*i)));
                }
                break;
            }
            for i in fitting {
                budget -= natural[i];
            }
            if rest.is_empty() {
                break;
            }
            left = rest;
        }
        unwrapped
    }
}

/// A free-text cell wrapped at `width`, each of its lines on its own.
fn wrap_cell(text: &str, width: usize) -> String {
    let wrap = Wrap::at(width).keeping_commands_whole();
    let mut out = String::new();
    for line in text.split('\n') {
        wrap.push(&mut out, line, "");
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(layout: Layout) -> String {
        let mut table = Table::new(
            layout,
            &[
                ("NAMESPACE", Fit::Whole),
                ("WORKLOAD", Fit::Whole),
                ("PROBLEMS", Fit::Words),
            ],
        );
        table.row([
            "istio-gateways",
            "deploy/istio-ingressgateway-1-21-2",
            "a sentence that is much too long to fit beside the names",
        ]);
        table.row(["shop", "deploy/cart", ""]);
        table.render()
    }

    #[test]
    fn in_a_pipe_every_row_is_one_line_however_wide() {
        assert_eq!(
            sample(Layout::unlimited()),
            "\
NAMESPACE       WORKLOAD                            PROBLEMS
istio-gateways  deploy/istio-ingressgateway-1-21-2  a sentence that is much too long to fit beside the names
shop            deploy/cart
"
        );
    }

    #[test]
    fn at_a_terminal_only_the_free_text_wraps_at_spaces() {
        let text = sample(Layout::at(80));
        assert_eq!(
            text,
            "\
NAMESPACE       WORKLOAD                            PROBLEMS
istio-gateways  deploy/istio-ingressgateway-1-21-2  a sentence that is much too
                                                    long to fit beside the names
shop            deploy/cart
"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    }

    #[test]
    fn names_stay_whole_even_when_the_terminal_is_too_narrow() {
        let text = sample(Layout::at(30));
        assert!(
            text.contains("istio-gateways  deploy/istio-ingressgateway-1-21-2  "),
            "{text}"
        );
        assert!(
            text.lines()
                .all(|l| !l.ends_with("-") && !l.starts_with("eway")),
            "{text}"
        );
        for word in ["sentence", "beside"] {
            assert!(text.contains(word), "{word} was broken:\n{text}");
        }
    }

    #[test]
    fn free_columns_that_fit_keep_their_width_and_the_long_one_takes_the_rest() {
        let mut table = Table::new(
            Layout::at(40),
            &[
                ("A", Fit::Whole),
                ("SHORT", Fit::Words),
                ("LONG", Fit::Words),
            ],
        );
        table.row(["x", "two words", &"word ".repeat(10)]);
        let text = table.render();
        assert!(
            text.contains("x  two words  word word word word word"),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 40), "{text}");
    }

    #[test]
    fn colour_is_added_only_when_the_layout_allows_it() {
        let render = |color| {
            let mut table = Table::new(Layout { width: None, color }, &[("STATE", Fit::Whole)]);
            table.row([Cell::colored("stale", Color::Red)]);
            table.render()
        };
        assert_eq!(render(false), "STATE\nstale\n");
        assert!(render(true).contains("\x1b["), "{:?}", render(true));
    }

    #[test]
    fn a_headless_table_aligns_a_list() {
        let mut table = Table::headless(Layout::at(32), &[Fit::Whole, Fit::Words]).indented(2);
        table.row(["search", "already labelled"]);
        table.row(["kube-system", "a system namespace"]);
        assert_eq!(
            table.render(),
            "  search       already labelled\n  kube-system  a system\n               namespace\n"
        );
    }
}
