//! Printing report lines as they come: an aligned table for people, JSON lines, or CSV; and
//! where an audit's findings go ([`Sink`]: the command hands the audit one).

use std::io::Write;

use super::report::{Line, COLUMNS};
use super::scan::Problem;

/// Where an audit's findings go as they are made: its report lines and the problems with its
/// sources.
pub trait Sink {
    /// One report line.
    fn line(&mut self, l: &Line) -> std::io::Result<()>;
    /// A source or record that could not be read.
    fn problem(&mut self, p: &Problem) -> std::io::Result<()>;
    /// Everything is in; write out what is held.
    fn finish(&mut self) -> std::io::Result<()>;
}

/// The command's sink: lines through a [`Printer`] (standard output), problems as
/// `problem: ...` lines on `problems` (standard error).
pub struct Output<W: Write, E: Write> {
    /// The report's printer.
    pub lines: Printer<W>,
    /// Where problems are told.
    pub problems: E,
}

impl<W: Write, E: Write> Sink for Output<W, E> {
    fn line(&mut self, l: &Line) -> std::io::Result<()> {
        self.lines.line(l)
    }

    fn problem(&mut self, p: &Problem) -> std::io::Result<()> {
        writeln!(self.problems, "problem: {p}")
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.lines.finish()?;
        self.problems.flush()
    }
}

/// How the report is printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns, digests shortened, for people.
    #[default]
    Table,
    /// One JSON object per line.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

/// Lines kept to size the table's columns before the first is printed; later lines are
/// printed as they come, in the same widths.
const TABLE_SAMPLE: usize = 200;

/// Prints lines as they come in the chosen format.
pub struct Printer<W: Write> {
    out: W,
    format: Format,
    started: bool,
    held: Vec<[String; 10]>,
    widths: Option<[usize; 10]>,
}

impl<W: Write> Printer<W> {
    /// A printer writing to `out`.
    pub fn new(out: W, format: Format) -> Printer<W> {
        Printer {
            out,
            format,
            started: false,
            held: Vec::new(),
            widths: None,
        }
    }

    /// Prints one line (a table holds its first lines to size the columns).
    pub fn line(&mut self, l: &Line) -> std::io::Result<()> {
        match self.format {
            Format::Json => {
                serde_json::to_writer(&mut self.out, l)?;
                writeln!(self.out)
            }
            Format::Csv => {
                if !self.started {
                    self.started = true;
                    writeln!(self.out, "{}", COLUMNS.join(","))?;
                }
                let cells: Vec<String> = l.cells(false).iter().map(|c| csv(c)).collect();
                writeln!(self.out, "{}", cells.join(","))
            }
            Format::Table => {
                self.held.push(l.cells(true));
                if self.widths.is_some() || self.held.len() >= TABLE_SAMPLE {
                    self.flush_table()?;
                }
                Ok(())
            }
        }
    }

    /// Prints what is held; call once at the end.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if self.format == Format::Table && !self.held.is_empty() {
            self.flush_table()?;
        }
        self.out.flush()
    }

    fn flush_table(&mut self) -> std::io::Result<()> {
        let widths = *self.widths.get_or_insert_with(|| {
            let mut w = COLUMNS.map(|c| c.len());
            for row in &self.held {
                for (i, cell) in row.iter().enumerate() {
                    w[i] = w[i].max(cell.chars().count());
                }
            }
            w
        });
        if !self.started {
            self.started = true;
            let head = COLUMNS.map(|c| c.to_uppercase());
            write_row(&mut self.out, &head, &widths)?;
        }
        for row in std::mem::take(&mut self.held) {
            write_row(&mut self.out, &row, &widths)?;
        }
        Ok(())
    }
}

fn write_row(
    out: &mut impl Write,
    row: &[String; 10],
    widths: &[usize; 10],
) -> std::io::Result<()> {
    let mut text = String::new();
    for (i, cell) in row.iter().enumerate() {
        if i + 1 == row.len() {
            text.push_str(cell);
        } else {
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', pad + 2));
        }
    }
    writeln!(out, "{}", text.trim_end())
}

/// A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
