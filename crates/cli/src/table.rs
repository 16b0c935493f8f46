//! The one table layout of the text output (`runs`, the `show` timeline,
//! `verify`, the transcript of `state`): cells separated by two spaces, each
//! column as wide as its widest cell or as a width fixed up front.
//!
//! Invariants: widths count characters, not bytes; the last column is never
//! padded, so a line ends where its last cell does; styling is applied to the
//! cell inside its padding, so colour never moves a column.

/// Where a cell sits in its column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text: padded on the right.
    Left,
    /// Numbers: padded on the left.
    Right,
}

/// The columns of a table: their alignment and width.
#[derive(Clone, Debug)]
pub struct Table {
    align: Vec<Align>,
    widths: Vec<usize>,
}

/// The gap between two columns.
const GAP: &str = "  ";

impl Table {
    /// Columns with these alignments, each as wide as the cells [`Table::fit`] is given.
    pub fn new(align: &[Align]) -> Table {
        Table {
            align: align.to_vec(),
            widths: vec![0; align.len()],
        }
    }

    /// Columns with these alignments and fixed widths, for lines written as
    /// they come (a cell wider than its column is written whole).
    pub fn fixed(columns: &[(Align, usize)]) -> Table {
        Table {
            align: columns.iter().map(|(align, _)| *align).collect(),
            widths: columns.iter().map(|(_, width)| *width).collect(),
        }
    }

    /// Widens the columns to hold `cells`.
    pub fn fit<S: AsRef<str>>(&mut self, cells: &[S]) {
        for (width, cell) in self.widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.as_ref().chars().count());
        }
    }

    /// One line of plain cells.
    pub fn line<S: AsRef<str>>(&self, cells: &[S]) -> String {
        self.styled_line(cells, |_, cell| cell.to_owned())
    }

    /// One line, each cell styled by `paint(column, cell)` inside its padding.
    pub fn styled_line<S: AsRef<str>>(&self, cells: &[S], paint: impl Fn(usize, &str) -> String) -> String {
        let last = cells.len().saturating_sub(1);
        let mut line = String::new();
        for (column, cell) in cells.iter().enumerate() {
            let cell = cell.as_ref();
            let pad = if column == last {
                0
            } else {
                self.widths
                    .get(column)
                    .map_or(0, |width| width.saturating_sub(cell.chars().count()))
            };
            let align = self.align.get(column).copied().unwrap_or(Align::Left);
            if column > 0 {
                line.push_str(GAP);
            }
            if align == Align::Right {
                line.push_str(&" ".repeat(pad));
            }
            line.push_str(&paint(column, cell));
            if align == Align::Left {
                line.push_str(&" ".repeat(pad));
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell_and_the_last_is_not_padded() {
        let mut table = Table::new(&[Align::Left, Align::Right, Align::Left]);
        table.fit(&["ID", "EVENTS", "GOAL"]);
        table.fit(&["abcdefgh", "7", "a long goal"]);
        assert_eq!(table.line(&["ID", "EVENTS", "GOAL"]), "ID        EVENTS  GOAL");
        assert_eq!(table.line(&["abcdefgh", "7", "g"]), "abcdefgh       7  g");
    }

    #[test]
    fn styling_stays_inside_the_padding() {
        let table = Table::fixed(&[(Align::Left, 3), (Align::Left, 0)]);
        let line = table.styled_line(&["ok", "x"], |column, cell| {
            if column == 0 {
                format!("<{cell}>")
            } else {
                cell.to_owned()
            }
        });
        assert_eq!(line, "<ok>   x");
    }

    #[test]
    fn widths_count_characters() {
        let mut table = Table::new(&[Align::Left, Align::Left]);
        table.fit(&["→→", ""]);
        assert_eq!(table.line(&["a", "b"]), "a   b");
    }
}
