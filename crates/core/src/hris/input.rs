//! Input decoding: the bytes a CSV file starts as (an optional UTF-8 byte order mark, LF or
//! CRLF line ends, line numbers that count quoted line breaks and blank lines), and its header
//! row mapped onto the columns the file has, in any order.

use std::collections::VecDeque;
use std::io::{self, Read};

use csv::ByteRecord;

use super::rules::excerpt;
use crate::problem::{Problem, Problems};

/// The bytes the csv reader sees: the source without a leading UTF-8 byte order mark (the
/// csv crate keeps it), with the offset of every line feed noted so a record's byte offset can
/// be turned into its line. (csv's own line count skips line breaks inside quoted fields.)
pub(super) struct Input<R> {
    inner: R,
    head: [u8; 3],
    start: usize,
    end: usize,
    checked: bool,
    /// Bytes handed out so far.
    offset: u64,
    /// Whether the last byte handed out was a carriage return.
    last_cr: bool,
    /// Line feeds handed out but not yet passed: offset, and whether a CR came right before.
    breaks: VecDeque<(u64, bool)>,
    /// Line feeds passed.
    passed: u64,
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

impl<R: Read> Input<R> {
    pub(super) fn new(inner: R) -> Self {
        Input {
            inner,
            head: [0; 3],
            start: 0,
            end: 0,
            checked: false,
            offset: 0,
            last_cr: false,
            breaks: VecDeque::new(),
            passed: 0,
        }
    }

    /// The 1-based line of a record that csv says starts at byte `start`. Records are asked
    /// for in order. csv counts the line breaks before a record (a CRLF's LF, blank lines)
    /// into it, so those are skipped to reach the line its first field is on.
    pub(super) fn line_of(&mut self, start: u64) -> u64 {
        let mut cursor = start;
        while let Some(&(at, cr)) = self.breaks.front() {
            let leading = at == cursor || (cr && at == cursor + 1);
            if at >= start && !leading {
                break;
            }
            if at >= start {
                cursor = at + 1;
            }
            self.breaks.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }

    fn note(&mut self, bytes: &[u8]) {
        let mut previous_cr = self.last_cr;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                self.breaks.push_back((self.offset + i as u64, previous_cr));
            }
            previous_cr = b == b'\r';
        }
        self.last_cr = previous_cr;
        self.offset += bytes.len() as u64;
    }
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.checked {
            while self.end < BOM.len() {
                match self.inner.read(&mut self.head[self.end..]) {
                    Ok(0) => break,
                    Ok(n) => self.end += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.checked = true;
            if self.head[..self.end] == BOM {
                self.start = self.end;
            }
        }
        let n = if self.start < self.end {
            let n = buf.len().min(self.end - self.start);
            buf[..n].copy_from_slice(&self.head[self.start..self.start + n]);
            self.start += n;
            n
        } else {
            self.inner.read(buf)?
        };
        self.note(&buf[..n]);
        Ok(n)
    }
}

/// A column a file has: its header name and whether it must be present.
pub(super) struct Column {
    /// The header name (matched ignoring ASCII case).
    pub(super) name: &'static str,
    /// Whether a header without it makes the file unusable.
    pub(super) required: bool,
}

/// A column every file of its kind must have.
pub(super) const fn required(name: &'static str) -> Column {
    Column {
        name,
        required: true,
    }
}

/// Where each of a file's columns is in its header.
pub(super) struct Header {
    /// Index of each column in the header, where present.
    pub(super) at: Vec<Option<usize>>,
    /// How many fields the header has.
    pub(super) width: usize,
}

/// The header a file should start with, for hints.
pub(super) fn expected(columns: &[Column]) -> String {
    columns.iter().map(|c| c.name).collect::<Vec<_>>().join(",")
}

/// Maps the header row (on `line`) onto `columns`. `None` (with problems pushed) when the file
/// cannot be used: an empty header, a header that is not UTF-8, a column named twice or a
/// required column missing. Unknown columns are warnings and ignored.
pub(super) fn map_header(
    file: &str,
    header: &ByteRecord,
    line: u64,
    columns: &'static [Column],
    problems: &mut Problems,
) -> Option<Header> {
    if header.iter().all(|f| f.trim_ascii().is_empty()) {
        problems.push(
            "empty files",
            Problem::error(file, format!("{file} is empty: it has no header row"))
                .at_line(1)
                .hint(format!(
                    "start the file with the header row `{}`",
                    expected(columns)
                )),
        );
        return None;
    }
    let mut at = vec![None; columns.len()];
    let mut usable = true;
    for (i, raw) in header.iter().enumerate() {
        let Ok(name) = std::str::from_utf8(raw) else {
            problems.push(
                "header not UTF-8",
                Problem::error(file, "the header is not valid UTF-8")
                    .at_line(line)
                    .hint("save the file as UTF-8"),
            );
            return None;
        };
        usable &= place(file, line, columns, &mut at, i, name.trim(), problems);
    }
    usable &= has_required(file, line, columns, &at, problems);
    usable.then_some(Header {
        at,
        width: header.len(),
    })
}

/// Notes header field `i`, named `name`, as the column it names. False when the column was
/// named already (the file is unusable); an unknown column is a warning.
fn place(
    file: &str,
    line: u64,
    columns: &'static [Column],
    at: &mut [Option<usize>],
    i: usize,
    name: &str,
    problems: &mut Problems,
) -> bool {
    let column = i as u64 + 1;
    let Some(k) = columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
    else {
        problems.push(
            "unknown columns",
            Problem::warning(
                file,
                if name.is_empty() {
                    format!("column {column} has no name; it is ignored")
                } else {
                    format!("unknown column `{}` is ignored", excerpt(name))
                },
            )
            .at_line(line)
            .at_field(&excerpt(name), column)
            .hint(format!("the columns read are `{}`", expected(columns))),
        );
        return true;
    };
    let Some(first) = at[k] else {
        at[k] = Some(i);
        return true;
    };
    problems.push(
        "columns named twice",
        Problem::error(
            file,
            format!(
                "column `{name}` appears twice in the header (columns {} and {column})",
                first + 1
            ),
        )
        .at_line(line)
        .at_field(columns[k].name, column)
        .hint("keep one of the two columns"),
    );
    false
}

/// Reports every required column the header lacks; true when it has them all.
fn has_required(
    file: &str,
    line: u64,
    columns: &'static [Column],
    at: &[Option<usize>],
    problems: &mut Problems,
) -> bool {
    let mut all = true;
    for (k, column) in columns.iter().enumerate() {
        if column.required && at[k].is_none() {
            all = false;
            problems.push(
                "missing columns",
                Problem::error(file, format!("the header has no `{}` column", column.name))
                    .at_line(line)
                    .hint(format!(
                        "add `{}` to the header; the header is `{}` (in any order)",
                        column.name,
                        expected(columns)
                    )),
            );
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::domain::Locale;

    #[test]
    fn empty_file_is_an_error_naming_it() {
        let problems = errors(CATALOG, b"", ASSIGNMENTS);
        let p = find(&problems, "hris/agents.csv is empty");
        assert_eq!(at(p), ("hris/agents.csv", Some(1), None, None));
        assert!(
            p.hint
                .as_deref()
                .unwrap()
                .contains("employee_id,user_id,locale")
        );
        // Only a BOM and blank lines is empty too.
        let problems = errors(b"\xEF\xBB\xBF\n\n", AGENTS, ASSIGNMENTS);
        find(&problems, "hris/catalog.csv is empty");
    }

    #[test]
    fn missing_required_column_is_one_problem_at_line_1() {
        let problems = errors(CATALOG, b"employee_id,locale\nE1,en-us\n", ASSIGNMENTS);
        let p = find(&problems, "the header has no `user_id` column");
        assert_eq!(at(p), ("hris/agents.csv", Some(1), None, None));
        assert_eq!(
            problems
                .iter()
                .filter(|p| p.file == "hris/agents.csv")
                .count(),
            1,
            "{}",
            show(&problems)
        );
        // The assignments of E1/E2 are not reported as unknown employees: agents.csv is unusable.
        assert_eq!(problems.len(), 1, "{}", show(&problems));
    }

    #[test]
    fn unknown_extra_column_is_a_warning() {
        let loaded = ok(
            CATALOG,
            b"employee_id,user_id,team,locale\nE1,u-1,blue,en-us\nE2,u-2,red,de-de\n",
            ASSIGNMENTS,
        );
        assert_eq!(loaded.warnings.len(), 1);
        let p = &loaded.warnings[0];
        assert_eq!(p.severity, Severity::Warning);
        assert_eq!(p.message, "unknown column `team` is ignored");
        assert_eq!(at(p), ("hris/agents.csv", Some(1), Some(3), Some("team")));
        assert_eq!(
            loaded.desired.agents[&EmployeeId::from("E1")]
                .locale
                .as_str(),
            "en-us"
        );
    }

    #[test]
    fn duplicate_column_is_an_error() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale,user_id\nE1,u-1,en-us,u-9\n",
            ASSIGNMENTS,
        );
        let p = find(
            &problems,
            "column `user_id` appears twice in the header (columns 2 and 4)",
        );
        assert_eq!(
            at(p),
            ("hris/agents.csv", Some(1), Some(4), Some("user_id"))
        );
    }

    #[test]
    fn columns_may_come_in_any_order_and_values_are_trimmed() {
        let loaded = ok(
            b"routing_profile_id,name,locale,kind,description,code
rp-1, Payments ,en-us,skill,,PAY
rp-1,Zahlungen,de-de,skill,,PAY
rp-1,Quality,en-us,proficiency,,QA
rp-1,Qualitaet,de-de,proficiency,,QA
",
            b"locale,employee_id,user_id\n en-us , E1 ,u-1\nde-de,E2,u-2\n",
            b"active,level,code,employee_id\nTRUE,5,PAY,E1\n,3,QA,E1\nNo,7,PAY,E2\n",
        );
        let pay = loaded
            .desired
            .catalog
            .entry(&Code::from("PAY"), &Locale::parse("en-us").unwrap())
            .unwrap();
        assert_eq!(
            (pay.name.as_str(), pay.routing_profile_id.as_str()),
            ("Payments", "rp-1")
        );
        assert!(loaded.desired.agents.contains_key(&EmployeeId::from("E1")));
        assert_eq!(wanted(&loaded, "E1", "PAY").level.get(), 5);
        assert!(!wanted(&loaded, "E2", "PAY").active);
    }

    #[test]
    fn utf8_bom_is_tolerated() {
        let loaded = ok(
            b"\xEF\xBB\xBFcode,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,,rp-1
PAY,skill,de-de,Zahlungen,,rp-1
QA,proficiency,en-us,Quality,,rp-1
QA,proficiency,de-de,Qualitaet,,rp-1
",
            b"\xEF\xBB\xBFemployee_id,user_id,locale\nE1,u-1,en-us\nE2,u-2,de-de\n",
            b"\xEF\xBB\xBF\"employee_id\",code,level,active\nE1,PAY,5,true\nE1,QA,3,\nE2,PAY,7,no\n",
        );
        assert!(loaded.warnings.is_empty(), "{}", show(&loaded.warnings));
        assert_eq!(loaded.desired.agents.len(), 2);
        assert_eq!(wanted(&loaded, "E2", "PAY").line, 4);
    }

    #[test]
    fn crlf_line_ends_are_tolerated() {
        let loaded = ok(
            b"code,kind,locale,name,description,routing_profile_id\r
PAY,skill,en-us,Payments,\"two\r\nlines\",rp-1\r
PAY,skill,de-de,Zahlungen,,rp-1\r
QA,proficiency,en-us,Quality,,rp-1\r
QA,proficiency,de-de,Qualitaet,,rp-1\r
",
            b"employee_id,user_id,locale\r\nE1,u-1,en-us\r\nE2,u-2,de-de\r\n",
            b"employee_id,code,level,active\r\nE1,PAY,5,true\r\nE1,QA,3,\r\nE2,PAY,7,no\r\n",
        );
        let d = &loaded.desired;
        let en = Locale::parse("en-us").unwrap();
        let pay = d.catalog.entry(&Code::from("PAY"), &en).unwrap();
        assert_eq!(pay.description, "two\r\nlines");
        assert_eq!(pay.routing_profile_id, "rp-1", "no stray \\r");
        // A quoted line break moves the next row's line on.
        assert_eq!(d.catalog.entry(&Code::from("QA"), &en).unwrap().line, 5);
        assert_eq!(d.agents[&EmployeeId::from("E2")].locale.as_str(), "de-de");
        assert!(!wanted(&loaded, "E2", "PAY").active);
        // Line numbers in problems are right with CRLF too.
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\r\nE1,u-1,en-us\r\nE2,u-2,de-DE\r\n",
            ASSIGNMENTS,
        );
        assert_eq!(
            at(find(&problems, "must be lowercase")),
            ("hris/agents.csv", Some(3), Some(3), Some("locale"))
        );
    }

    #[test]
    fn line_numbers_count_quoted_line_breaks_and_blank_lines() {
        let problems = errors(
            b"\n\ncode,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,\"one
two
three\",rp-1

PAY,skill,de-de,Zahlungen,\"a\r\nb\",rp-1\r
\r
QA,Skill,en-us,Quality,,rp-1
",
            AGENTS,
            b"employee_id,code,level\r\n\r\n\r\nE1,PAY,5\r\nE2,PAY,50\r\n",
        );
        assert_eq!(find(&problems, "kind `Skill`").line, Some(11));
        assert_eq!(find(&problems, "level 50").line, Some(5));
    }
}
