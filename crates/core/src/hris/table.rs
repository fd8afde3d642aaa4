//! The generic CSV reader: a file read row by row into one reused record, each row's line and
//! shape checked, values looked up by column, and problems placed at a row's field. Also the
//! values more than one file has (locales) and how messages list things.

use std::io::Read;

use csv::{ByteRecord, StringRecord};

use super::fx::FxMap;
use super::input::{Column, Input, map_header};
use super::rules::locale_refusal;
use super::{Columns, Source};
use crate::domain::{Locale, LocaleError};
use crate::problem::{Problem, Problems};

/// A CSV file being read row by row into one reused record.
pub(super) struct Table<R> {
    /// The file as the user named it.
    pub(super) file: String,
    reader: csv::Reader<Input<R>>,
    /// The columns the file has.
    pub(super) columns: &'static [Column],
    /// Index of each of `columns` in the header, where present.
    at: Vec<Option<usize>>,
    width: usize,
    /// The current row (`None` only while the next is read into its buffers).
    row: Option<StringRecord>,
    /// Non-blank data rows seen.
    rows: u64,
}

/// Whether a row read can be looked at field by field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// Every field present and valid UTF-8.
    Whole,
    /// Reported already (ragged or not UTF-8); only its key may be used to quiet follow-ups.
    Broken,
}

impl<R: Read> Table<R> {
    /// Opens a file and maps its header. `None` (with problems pushed) when it cannot be used.
    pub(super) fn open(
        source: Source<R>,
        columns: &'static [Column],
        problems: &mut Problems,
    ) -> Option<Table<R>> {
        let file = source.name;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(Input::new(source.reader));
        let header = match reader.byte_headers() {
            Ok(header) => header.clone(),
            Err(e) => {
                problems.push("unreadable files", read_error(&file, &e));
                return None;
            }
        };
        let header_start = header.position().map_or(0, |p| p.byte());
        let header_line = reader.get_mut().line_of(header_start);
        let mapped = map_header(&file, &header, header_line, columns, problems)?;
        Some(Table {
            file,
            reader,
            columns,
            at: mapped.at,
            width: mapped.width,
            row: Some(StringRecord::new()),
            rows: 0,
        })
    }

    /// Reads the next non-blank row: its line and shape. Rows whose shape is
    /// [`Shape::Broken`] have been reported already. The row's buffers are reused.
    pub(super) fn next(&mut self, problems: &mut Problems) -> Option<(u64, Shape)> {
        let mut bytes = self
            .row
            .take()
            .map(StringRecord::into_byte_record)
            .unwrap_or_default();
        let result = loop {
            match self.reader.read_byte_record(&mut bytes) {
                Ok(true) => {}
                Ok(false) => break None,
                Err(e) => {
                    problems.push("unreadable files", read_error(&self.file, &e));
                    break None;
                }
            }
            if bytes.iter().all(|f| f.trim_ascii().is_empty()) {
                continue; // blank lines and `,,,` rows spreadsheets leave behind
            }
            self.rows += 1;
            let start = bytes.position().map_or(0, |p| p.byte());
            let line = self.reader.get_mut().line_of(start);
            break Some((line, self.check_shape(&bytes, line, problems)));
        };
        // Valid UTF-8 (checked once, for the whole row) moves back without a copy.
        self.row = Some(StringRecord::from_byte_record_lossy(bytes));
        result
    }

    /// Reports a row with more fields than the header, or without a required one, or with a
    /// field that is not UTF-8: such a row is [`Shape::Broken`].
    fn check_shape(&self, record: &ByteRecord, line: u64, problems: &mut Problems) -> Shape {
        if self.is_ragged(record, line, problems) {
            return Shape::Broken;
        }
        if record.as_slice().is_ascii() || std::str::from_utf8(record.as_slice()).is_ok() {
            return Shape::Whole;
        }
        for (i, field) in record.iter().enumerate() {
            if std::str::from_utf8(field).is_err() {
                let name = self
                    .at
                    .iter()
                    .position(|at| *at == Some(i))
                    .map_or("", |k| self.columns[k].name);
                problems.push(
                    "fields not UTF-8",
                    Problem::error(&self.file, "this field is not valid UTF-8")
                        .at_line(line)
                        .at_field(name, i as u64 + 1)
                        .hint("save the file as UTF-8"),
                );
            }
        }
        Shape::Broken
    }

    /// True (with the problem pushed) when the row has more fields than the header, or too
    /// few to reach a required column. Leaving off optional trailing columns is fine.
    fn is_ragged(&self, record: &ByteRecord, line: u64, problems: &mut Problems) -> bool {
        let len = record.len();
        let missing = self
            .columns
            .iter()
            .zip(&self.at)
            .find(|(c, at)| c.required && at.is_some_and(|i| i >= len));
        if len <= self.width && missing.is_none() {
            return false;
        }
        let (what, hint) = if len > self.width {
            (
                "more",
                "quote values that contain a comma (\"like, this\") or remove the extra fields",
            )
        } else {
            (
                "fewer",
                "add the missing fields (an empty field still needs its comma)",
            )
        };
        problems.push(
            "rows of the wrong width",
            Problem::error(
                &self.file,
                format!(
                    "this row has {what} fields ({len}) than the header ({})",
                    self.width
                ),
            )
            .at_line(line)
            .hint(hint),
        );
        true
    }

    /// The trimmed value of column `k` in the current row; empty when absent.
    pub(super) fn get(&self, k: usize) -> &str {
        self.at[k]
            .zip(self.row.as_ref())
            .and_then(|(i, row)| row.get(i))
            .map_or("", str::trim_ascii)
    }

    /// Where the header put each known column.
    pub(super) fn layout(&self) -> Columns {
        Columns(
            self.columns
                .iter()
                .zip(&self.at)
                .filter_map(|(c, at)| at.map(|i| (c.name, i as u64 + 1)))
                .collect(),
        )
    }

    /// The 1-based column of `k` in the header, if present.
    pub(super) fn column(&self, k: usize) -> Option<u64> {
        self.at[k].map(|i| i as u64 + 1)
    }

    /// A problem at column `k` of `line`.
    fn problem(&self, problem: Problem, line: u64, k: usize) -> Problem {
        let problem = problem.at_line(line);
        match self.column(k) {
            Some(column) => problem.at_field(self.columns[k].name, column),
            None => problem,
        }
    }

    pub(super) fn error(&self, line: u64, k: usize, message: impl Into<String>) -> Problem {
        self.problem(Problem::error(&self.file, message), line, k)
    }

    pub(super) fn warning(&self, line: u64, k: usize, message: impl Into<String>) -> Problem {
        self.problem(Problem::warning(&self.file, message), line, k)
    }

    /// After the last row: a file with a header and no rows is an error. True if it had rows.
    pub(super) fn finish(&self, what: &str, problems: &mut Problems) -> bool {
        if self.rows == 0 {
            problems.push(
                "files without rows",
                Problem::error(&self.file, format!("{} {}", self.file, super::EMPTY_FILE))
                    .at_line(1)
                    .hint(format!("add {what} below the header")),
            );
        }
        self.rows > 0
    }
}

/// A problem the csv reader met: the file could not be read, or not parsed as CSV.
pub(super) fn read_error(file: &str, e: &csv::Error) -> Problem {
    let problem = match e.kind() {
        csv::ErrorKind::Io(e) => {
            return Problem::error(file, format!("cannot read {file}: {e}"))
                .hint("check that the file exists and is readable");
        }
        _ => Problem::error(file, format!("cannot parse {file}: {e}")).hint("save it as UTF-8 CSV"),
    };
    match e.position() {
        Some(p) => problem.at_line(p.line()),
        None => problem,
    }
}

/// Parses a locale tag, reusing an earlier parse of the same tag (agents repeat a handful of
/// locales; this keeps the reader from allocating per row beyond the tag it keeps).
pub(super) fn parse_locale(
    cache: &mut FxMap<String, Locale>,
    tag: &str,
) -> Result<Locale, LocaleError> {
    if let Some(locale) = cache.get(tag) {
        return Ok(locale.clone());
    }
    let locale = Locale::parse(tag)?;
    cache.insert(tag.to_string(), locale.clone());
    Ok(locale)
}

/// The problem for a locale `Locale::parse` refused, at column `k`.
pub(super) fn locale_problem<R: Read>(
    table: &Table<R>,
    line: u64,
    k: usize,
    tag: &str,
    e: &LocaleError,
) -> Problem {
    let (message, hint) = locale_refusal(tag, e);
    table.error(line, k, message).hint(hint)
}

pub(super) fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.into_iter().collect();
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn header_without_rows_is_an_error_naming_the_file() {
        let problems = errors(CATALOG, AGENTS, b"employee_id,code,level,active\n\n");
        let p = find(&problems, "hris/assignments.csv has a header but no rows");
        assert_eq!(at(p), ("hris/assignments.csv", Some(1), None, None));
        assert!(p.is_error());
    }

    #[test]
    fn three_files_with_headers_only_are_a_start_with_one_warning() {
        let loaded = ok(
            b"code,kind,locale,name,description,routing_profile_id\n",
            b"employee_id,user_id,locale\n",
            b"employee_id,code,level,active\n",
        );
        assert!(loaded.desired.agents.is_empty() && loaded.desired.assignments.is_empty());
        assert_eq!(loaded.warnings.len(), 1, "{}", show(&loaded.warnings));
        assert!(loaded.warnings[0].message.contains("no rows yet"));
        // One empty beside full ones stays an error (tested above); two as well.
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\n",
            b"employee_id,code,level,active\n",
        );
        find(&problems, "hris/agents.csv has a header but no rows");
    }

    #[test]
    fn short_or_long_row_is_an_error() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level,active\nE1,PAY\nE1,QA,3,true,extra\nE2,PAY,7\n",
        );
        let p = find(&problems, "fewer fields (2) than the header (4)");
        assert_eq!(at(p), ("hris/assignments.csv", Some(2), None, None));
        let p = find(&problems, "more fields (5) than the header (4)");
        assert_eq!(p.line, Some(3));
        // Leaving off an optional trailing column is fine.
        assert_eq!(problems.len(), 2, "{}", show(&problems));
    }

    #[test]
    fn invalid_utf8_is_an_error_at_its_field() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\nE1,u-\xFF,en-us\nE2,u-2,de-de\n",
            ASSIGNMENTS,
        );
        let p = find(&problems, "not valid UTF-8");
        assert_eq!(
            at(p),
            ("hris/agents.csv", Some(2), Some(2), Some("user_id"))
        );
        // E1's assignments are not reported again as an unknown employee.
        assert_eq!(problems.len(), 1, "{}", show(&problems));
    }
}
