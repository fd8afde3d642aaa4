//! Reading the three HRIS files (SPEC section 3) into the [`Desired`] state.
//!
//! [`read_desired`] reads `catalog.csv`, then `agents.csv`, then `assignments.csv`, row by row,
//! and reports every problem it finds in one go, each with file, line, column, field and a hint.
//! Files that cannot be used at all (empty, or missing a required column) do not stop the
//! others from being checked: cross-file checks that need them are skipped, and rows that
//! refer to a row that was itself wrong are not reported a second time.
//!
//! The one rule that matters most (seed edge case 3): an assignment resolves to the variant of
//! its code in the *agent's* locale. When the catalog has no such variant, that is an error at
//! the assignment's line; another locale's variant is never used instead.

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read};

use csv::{ByteRecord, StringRecord};

use crate::desired::{
    Agent, Catalog, CatalogEntry, Code, Desired, EmployeeId, SourceFiles, Wanted,
};
use crate::domain::{Kind, Level, Locale, LocaleError, UserId};
use crate::problem::Problem;

/// One input file: its name as the user gave it and something to read it from.
#[derive(Debug, Clone)]
pub struct Source<R> {
    /// The path as the user named it; every [`Problem::file`] about this file carries it.
    pub name: String,
    /// The bytes (UTF-8, optionally with a BOM; LF or CRLF line ends).
    pub reader: R,
}

/// The desired state read from the HRIS files, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated desired state.
    pub desired: Desired,
    /// Problems that do not block a run (unknown columns, identical repeated rows, …),
    /// sorted by file (catalog, agents, assignments) then line.
    pub warnings: Vec<Problem>,
}

/// Reads `catalog.csv`, `agents.csv` and `assignments.csv` into the desired state.
///
/// On any error, returns every error *and* warning found in all three files, sorted by file
/// (in the order catalog, agents, assignments) then line and column.
pub fn read_desired<C: Read, A: Read, S: Read>(
    catalog: Source<C>,
    agents: Source<A>,
    assignments: Source<S>,
) -> Result<Loaded, Vec<Problem>> {
    let names = Names {
        catalog: catalog.name.clone(),
        agents: agents.name.clone(),
    };
    let files = SourceFiles {
        catalog: catalog.name.clone(),
        agents: agents.name.clone(),
        assignments: assignments.name.clone(),
    };
    let mut catalog_problems = Vec::new();
    let mut agent_problems = Vec::new();
    let mut assignment_problems = Vec::new();

    let catalog = read_catalog(catalog, &mut catalog_problems);
    let agents = read_agents(agents, &catalog, &names, &mut agent_problems);
    let wanted = read_assignments(
        assignments,
        &catalog,
        &agents,
        &names,
        &mut assignment_problems,
    );

    let mut problems = Vec::with_capacity(
        catalog_problems.len() + agent_problems.len() + assignment_problems.len(),
    );
    for mut file_problems in [catalog_problems, agent_problems, assignment_problems] {
        file_problems.sort_by(|a, b| {
            (a.line, a.column, a.severity, &a.message)
                .cmp(&(b.line, b.column, b.severity, &b.message))
        });
        problems.append(&mut file_problems);
    }
    if problems.iter().any(Problem::is_error) {
        return Err(problems);
    }
    Ok(Loaded {
        desired: Desired {
            files,
            catalog: catalog.catalog.unwrap_or_default(),
            agents: agents.agents.unwrap_or_default(),
            assignments: wanted,
            retired: Vec::new(),
        },
        warnings: problems,
    })
}

/// File names other files' messages refer to.
struct Names {
    catalog: String,
    agents: String,
}

/// A fast, non-cryptographic hasher (the Fx hash rustc uses) for the per-row lookups. The
/// keys are the user's own file contents, so there is nobody to flood the table.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

// ---------------------------------------------------------------------------------------------
// Reading a CSV table: header mapping, BOM, row shape, UTF-8.

/// The bytes the csv reader sees: the source without a leading UTF-8 byte order mark (the
/// csv crate keeps it), with the offset of every line feed noted so a record's byte offset can
/// be turned into its line. (csv's own line count skips line breaks inside quoted fields.)
struct Input<R> {
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
    fn new(inner: R) -> Self {
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
    fn line_of(&mut self, start: u64) -> u64 {
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
struct Column {
    name: &'static str,
    required: bool,
}

const fn required(name: &'static str) -> Column {
    Column {
        name,
        required: true,
    }
}

/// A CSV file being read row by row into one reused record.
struct Table<R> {
    file: String,
    reader: csv::Reader<Input<R>>,
    columns: &'static [Column],
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
enum Shape {
    /// Every field present and valid UTF-8.
    Whole,
    /// Reported already (ragged or not UTF-8); only its key may be used to quiet follow-ups.
    Broken,
}

impl<R: Read> Table<R> {
    /// Opens a file and maps its header. `None` (with problems pushed) when it cannot be used.
    fn open(
        source: Source<R>,
        columns: &'static [Column],
        problems: &mut Vec<Problem>,
    ) -> Option<Table<R>> {
        let file = source.name;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(Input::new(source.reader));
        let expected = || columns.iter().map(|c| c.name).collect::<Vec<_>>().join(",");
        let header = match reader.byte_headers() {
            Ok(header) => header.clone(),
            Err(e) => {
                problems.push(read_error(&file, &e));
                return None;
            }
        };
        let header_start = header.position().map_or(0, |p| p.byte());
        let header_line = reader.get_mut().line_of(header_start);
        if header.iter().all(|f| f.trim_ascii().is_empty()) {
            problems.push(
                Problem::error(&file, format!("{file} is empty: it has no header row"))
                    .at_line(1)
                    .hint(format!(
                        "start the file with the header row `{}`",
                        expected()
                    )),
            );
            return None;
        }
        let mut at = vec![None; columns.len()];
        let mut usable = true;
        for (i, raw) in header.iter().enumerate() {
            let column = i as u64 + 1;
            let Ok(name) = std::str::from_utf8(raw) else {
                problems.push(
                    Problem::error(&file, "the header is not valid UTF-8")
                        .at_line(header_line)
                        .hint("save the file as UTF-8"),
                );
                return None;
            };
            let name = name.trim();
            match columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
            {
                Some(k) => match at[k] {
                    None => at[k] = Some(i),
                    Some(first) => {
                        usable = false;
                        problems.push(
                            Problem::error(
                                &file,
                                format!(
                                    "column `{name}` appears twice in the header (columns {} and {column})",
                                    first + 1
                                ),
                            )
                            .at_line(header_line)
                            .at_field(columns[k].name, column)
                            .hint("keep one of the two columns"),
                        );
                    }
                },
                None => problems.push(
                    Problem::warning(
                        &file,
                        if name.is_empty() {
                            format!("column {column} has no name; it is ignored")
                        } else {
                            format!("unknown column `{name}` is ignored")
                        },
                    )
                    .at_line(header_line)
                    .at_field(name, column)
                    .hint(format!("the columns read are `{}`", expected())),
                ),
            }
        }
        for (k, column) in columns.iter().enumerate() {
            if column.required && at[k].is_none() {
                usable = false;
                problems.push(
                    Problem::error(&file, format!("the header has no `{}` column", column.name))
                        .at_line(header_line)
                        .hint(format!(
                            "add `{}` to the header; the header is `{}` (in any order)",
                            column.name,
                            expected()
                        )),
                );
            }
        }
        usable.then(|| Table {
            file,
            reader,
            columns,
            at,
            width: header.len(),
            row: Some(StringRecord::new()),
            rows: 0,
        })
    }

    /// Reads the next non-blank row: its line and shape. Rows whose shape is
    /// [`Shape::Broken`] have been reported already. The row's buffers are reused.
    fn next(&mut self, problems: &mut Vec<Problem>) -> Option<(u64, Shape)> {
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
                    problems.push(read_error(&self.file, &e));
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

    fn check_shape(&self, record: &ByteRecord, line: u64, problems: &mut Vec<Problem>) -> Shape {
        let len = record.len();
        let missing = self
            .columns
            .iter()
            .zip(&self.at)
            .find(|(c, at)| c.required && at.is_some_and(|i| i >= len));
        if len > self.width || missing.is_some() {
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
                    Problem::error(&self.file, "this field is not valid UTF-8")
                        .at_line(line)
                        .at_field(name, i as u64 + 1)
                        .hint("save the file as UTF-8"),
                );
            }
        }
        Shape::Broken
    }

    /// The trimmed value of column `k` in the current row; empty when absent.
    fn get(&self, k: usize) -> &str {
        self.at[k]
            .zip(self.row.as_ref())
            .and_then(|(i, row)| row.get(i))
            .map_or("", str::trim_ascii)
    }

    /// The 1-based column of `k` in the header, if present.
    fn column(&self, k: usize) -> Option<u64> {
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

    fn error(&self, line: u64, k: usize, message: impl Into<String>) -> Problem {
        self.problem(Problem::error(&self.file, message), line, k)
    }

    fn warning(&self, line: u64, k: usize, message: impl Into<String>) -> Problem {
        self.problem(Problem::warning(&self.file, message), line, k)
    }

    /// After the last row: a file with a header and no rows is an error. True if it had rows.
    fn finish(&self, what: &str, problems: &mut Vec<Problem>) -> bool {
        if self.rows == 0 {
            problems.push(
                Problem::error(
                    &self.file,
                    format!("{} has a header but no rows", self.file),
                )
                .at_line(1)
                .hint(format!("add {what} below the header")),
            );
        }
        self.rows > 0
    }
}

fn read_error(file: &str, e: &csv::Error) -> Problem {
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
fn parse_locale(cache: &mut FxMap<String, Locale>, tag: &str) -> Result<Locale, LocaleError> {
    if let Some(locale) = cache.get(tag) {
        return Ok(locale.clone());
    }
    let locale = Locale::parse(tag)?;
    cache.insert(tag.to_string(), locale.clone());
    Ok(locale)
}

/// The problem for a locale `Locale::parse` refused, at column `k`.
fn locale_problem<R: Read>(
    table: &Table<R>,
    line: u64,
    k: usize,
    tag: &str,
    e: &LocaleError,
) -> Problem {
    let hint = match e {
        LocaleError::NotLowercase(tag) => format!(
            "write `{}`: locales are compared exactly, in lower case",
            tag.to_ascii_lowercase()
        ),
        LocaleError::Malformed(_) if tag.is_empty() => {
            "give a lowercase locale tag such as en-us or de-de".to_string()
        }
        LocaleError::Malformed(_) => {
            "use a lowercase language-region tag such as en-us, en-gb or de-de".to_string()
        }
    };
    let message = if tag.is_empty() {
        "locale is empty".to_string()
    } else {
        e.to_string()
    };
    table.error(line, k, message).hint(hint)
}

fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.into_iter().collect();
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

// ---------------------------------------------------------------------------------------------
// catalog.csv

const CATALOG_COLUMNS: &[Column] = &[
    required("code"),
    required("kind"),
    required("locale"),
    required("name"),
    required("description"),
    required("routing_profile_id"),
];
const C_CODE: usize = 0;
const C_KIND: usize = 1;
const C_LOCALE: usize = 2;
const C_NAME: usize = 3;
const C_DESCRIPTION: usize = 4;
const C_PROFILE: usize = 5;

/// The catalog as far as it could be read.
struct CatalogRead {
    /// `None` when the file could not be used at all: checks against it are skipped.
    catalog: Option<Catalog>,
    /// Codes with a row that was wrong: a missing variant of them is not reported again.
    broken_codes: HashSet<String>,
    /// Locales (lowercased) of rows that were wrong: agents in them are not "unknown locale".
    broken_locales: HashSet<String>,
}

fn read_catalog<R: Read>(source: Source<R>, problems: &mut Vec<Problem>) -> CatalogRead {
    let mut read = CatalogRead {
        catalog: None,
        broken_codes: HashSet::new(),
        broken_locales: HashSet::new(),
    };
    let Some(mut table) = Table::open(source, CATALOG_COLUMNS, problems) else {
        return read;
    };
    let mut catalog = Catalog::default();
    let mut first_kind: HashMap<String, (Kind, u64)> = HashMap::new();
    // One tenant definition (kind, name, locale) can belong to one code only: two codes
    // claiming it would each remove the other's assignments on every run.
    let mut definition_owner: HashMap<(Kind, String, Locale), (String, u64)> = HashMap::new();
    let mut locales = FxMap::default();
    while let Some((line, shape)) = table.next(problems) {
        let code = table.get(C_CODE);
        let locale_tag = table.get(C_LOCALE);
        let mut ok = shape == Shape::Whole;
        if ok {
            if code.is_empty() {
                ok = false;
                problems.push(
                    table
                        .error(line, C_CODE, "code is empty")
                        .hint("give the HRIS code this row is a locale variant of"),
                );
            }
            let kind_text = table.get(C_KIND);
            let kind = match kind_text {
                "skill" => Some(Kind::Skill),
                "proficiency" => Some(Kind::Proficiency),
                _ => {
                    ok = false;
                    let message = if kind_text.is_empty() {
                        "kind is empty".to_string()
                    } else {
                        format!("kind `{kind_text}` is not `skill` or `proficiency`")
                    };
                    let lower = kind_text.to_ascii_lowercase();
                    let hint = if lower == "skill" || lower == "proficiency" {
                        format!("write `{lower}`, in lower case")
                    } else {
                        "write `skill` for a definition that routes, `proficiency` for one that does not"
                            .to_string()
                    };
                    problems.push(table.error(line, C_KIND, message).hint(hint));
                    None
                }
            };
            let locale = match parse_locale(&mut locales, locale_tag) {
                Ok(locale) => Some(locale),
                Err(e) => {
                    ok = false;
                    problems.push(locale_problem(&table, line, C_LOCALE, locale_tag, &e));
                    None
                }
            };
            for (k, what) in [
                (C_NAME, "the definition's name in the tenant"),
                (
                    C_PROFILE,
                    "the id of the routing profile the definition belongs to",
                ),
            ] {
                if table.get(k).is_empty() {
                    ok = false;
                    problems.push(
                        table
                            .error(line, k, format!("{} is empty", table.columns[k].name))
                            .hint(format!("give {what}")),
                    );
                }
            }
            if let (true, Some(kind), Some(locale)) = (ok, kind, locale) {
                match first_kind.get(code) {
                    Some(&(earlier, earlier_line)) if earlier != kind => {
                        ok = false;
                        problems.push(
                            table
                                .error(
                                    line,
                                    C_KIND,
                                    format!(
                                        "kind mismatch: code `{code}` is a {kind} here but a {earlier} on line {earlier_line}"
                                    ),
                                )
                                .hint(format!(
                                    "a code has one kind in every locale: make line {line} and line {earlier_line} agree"
                                )),
                        );
                    }
                    Some(_) => {}
                    None => {
                        first_kind.insert(code.to_string(), (kind, line));
                    }
                }
                let name = table.get(C_NAME);
                if ok {
                    let claim = (kind, name.to_string(), locale.clone());
                    match definition_owner.get(&claim) {
                        Some((other, other_line)) if other != code => {
                            ok = false;
                            problems.push(
                                table
                                    .error(
                                        line,
                                        C_NAME,
                                        format!(
                                            "{kind} `{name}` ({locale}) is already the definition of code `{other}` on line {other_line}"
                                        ),
                                    )
                                    .hint(format!(
                                        "one tenant definition belongs to one code: give line {line} its own name, or merge code `{code}` into `{other}`"
                                    )),
                            );
                        }
                        Some(_) => {}
                        None => {
                            definition_owner.insert(claim, (code.to_string(), line));
                        }
                    }
                }
                if ok {
                    let key = (Code::from(code), locale);
                    if let Some(earlier) = catalog.entries.get(&key) {
                        ok = false;
                        problems.push(
                            table
                                .error(
                                    line,
                                    C_LOCALE,
                                    format!(
                                        "code `{code}` in locale {} is listed twice, on lines {} and {line}",
                                        key.1, earlier.line
                                    ),
                                )
                                .hint(format!(
                                    "keep one row per code and locale: remove line {line} or line {}",
                                    earlier.line
                                )),
                        );
                    } else {
                        let (code, locale) = key;
                        catalog.insert(CatalogEntry {
                            code,
                            kind,
                            locale,
                            name: table.get(C_NAME).to_string(),
                            description: table.get(C_DESCRIPTION).to_string(),
                            routing_profile_id: table.get(C_PROFILE).to_string(),
                            line,
                        });
                    }
                }
            }
        }
        if !ok {
            if !code.is_empty() {
                read.broken_codes.insert(code.to_string());
            }
            if !locale_tag.is_empty() {
                read.broken_locales.insert(locale_tag.to_ascii_lowercase());
            }
        }
    }
    if table.finish("one row per code and locale", problems) {
        read.catalog = Some(catalog);
    }
    read
}

// ---------------------------------------------------------------------------------------------
// agents.csv

const AGENT_COLUMNS: &[Column] = &[
    required("employee_id"),
    required("user_id"),
    required("locale"),
];
const A_EMPLOYEE: usize = 0;
const A_USER: usize = 1;
const A_LOCALE: usize = 2;

/// The agents as far as they could be read.
struct AgentsRead {
    /// `None` when the file could not be used at all: checks against it are skipped.
    agents: Option<BTreeMap<EmployeeId, Agent>>,
    /// Employees with a row that was wrong: their assignments are not "unknown employee".
    broken: HashSet<String>,
}

fn read_agents<R: Read>(
    source: Source<R>,
    catalog: &CatalogRead,
    names: &Names,
    problems: &mut Vec<Problem>,
) -> AgentsRead {
    let mut read = AgentsRead {
        agents: None,
        broken: HashSet::new(),
    };
    let Some(mut table) = Table::open(source, AGENT_COLUMNS, problems) else {
        return read;
    };
    let catalog_locales: Option<FxMap<&str, ()>> = catalog
        .catalog
        .as_ref()
        .map(|c| c.entries.keys().map(|(_, l)| (l.as_str(), ())).collect());
    let mut agents: BTreeMap<EmployeeId, Agent> = BTreeMap::new();
    let mut locales = FxMap::default();
    while let Some((line, shape)) = table.next(problems) {
        let employee = table.get(A_EMPLOYEE);
        let mut ok = shape == Shape::Whole;
        if ok {
            if employee.is_empty() {
                ok = false;
                problems.push(
                    table
                        .error(line, A_EMPLOYEE, "employee_id is empty")
                        .hint("give the HRIS id of the employee"),
                );
            }
            let user = table.get(A_USER);
            if user.is_empty() {
                ok = false;
                problems.push(
                    table
                        .error(line, A_USER, "user_id is empty")
                        .hint("give the tenant's user id of this employee"),
                );
            }
            let tag = table.get(A_LOCALE);
            let locale = match parse_locale(&mut locales, tag) {
                Ok(locale) => Some(locale),
                Err(e) => {
                    ok = false;
                    problems.push(locale_problem(&table, line, A_LOCALE, tag, &e));
                    None
                }
            };
            if let (true, Some(locale)) = (ok, locale) {
                let vacant = match agents.entry(EmployeeId::from(employee)) {
                    Entry::Vacant(vacant) => vacant,
                    Entry::Occupied(earlier) => {
                        let first = earlier.get().line;
                        let message = format!(
                            "employee `{employee}` is listed twice, on lines {first} and {line}"
                        );
                        let hint = format!(
                            "keep one row per employee: remove line {line} or line {first}"
                        );
                        problems.push(table.error(line, A_EMPLOYEE, message).hint(hint));
                        continue;
                    }
                };
                let unknown = catalog_locales.as_ref().filter(|known| {
                    !known.contains_key(locale.as_str())
                        && !catalog.broken_locales.contains(locale.as_str())
                });
                if let Some(known) = unknown {
                    let mut have: Vec<&str> = known.keys().copied().collect();
                    have.sort_unstable();
                    problems.push(
                        table
                            .error(
                                line,
                                A_LOCALE,
                                format!(
                                    "unknown locale: employee `{employee}` works in {locale}, but no catalog row is in {locale}"
                                ),
                            )
                            .hint(format!(
                                "the catalog has {}: add rows in {locale} to {}, or correct the employee's locale",
                                list(have),
                                names.catalog
                            )),
                    );
                }
                let employee_id = vacant.key().clone();
                vacant.insert(Agent {
                    employee_id,
                    user_id: UserId::from(user),
                    locale,
                    line,
                });
            }
        }
        if !ok && !employee.is_empty() {
            read.broken.insert(employee.to_string());
        }
    }
    if !table.finish("one row per employee", problems) {
        return read;
    }
    // Two employees on one tenant user: report every later one against the first.
    let mut first: FxMap<&str, &Agent> = FxMap::default();
    first.reserve(agents.len());
    for agent in agents.values() {
        first
            .entry(agent.user_id.as_str())
            .and_modify(|f| {
                if agent.line < f.line {
                    *f = agent;
                }
            })
            .or_insert(agent);
    }
    for agent in agents.values() {
        let owner = first[agent.user_id.as_str()];
        if owner.line != agent.line {
            problems.push(
                table
                    .error(
                        agent.line,
                        A_USER,
                        format!(
                            "employees `{}` (line {}) and `{}` (line {}) share user id `{}`",
                            owner.employee_id, owner.line, agent.employee_id, agent.line, agent.user_id
                        ),
                    )
                    .hint("each tenant user belongs to one employee: correct the user_id on one of the two lines"),
            );
        }
    }
    read.agents = Some(agents);
    read
}

// ---------------------------------------------------------------------------------------------
// assignments.csv

const ASSIGNMENT_COLUMNS: &[Column] = &[
    required("employee_id"),
    required("code"),
    required("level"),
    Column {
        name: "active",
        required: false,
    },
];
const S_EMPLOYEE: usize = 0;
const S_CODE: usize = 1;
const S_LEVEL: usize = 2;
const S_ACTIVE: usize = 3;

/// `active`: empty is true; true/false, yes/no, 1/0 in any case.
fn parse_active(text: &str) -> Option<bool> {
    if text.is_empty() {
        return Some(true);
    }
    [
        ("true", true),
        ("yes", true),
        ("1", true),
        ("false", false),
        ("no", false),
        ("0", false),
    ]
    .into_iter()
    .find(|(word, _)| text.eq_ignore_ascii_case(word))
    .map(|(_, value)| value)
}

fn read_assignments<R: Read>(
    source: Source<R>,
    catalog: &CatalogRead,
    agents: &AgentsRead,
    names: &Names,
    problems: &mut Vec<Problem>,
) -> BTreeMap<EmployeeId, BTreeMap<Code, Wanted>> {
    let Some(mut table) = Table::open(source, ASSIGNMENT_COLUMNS, problems) else {
        return BTreeMap::new();
    };
    // Borrowed indexes, so rows are looked up without allocating. Locales are numbered; each
    // code notes which of them it has a variant in.
    let empty = Catalog::default();
    let known = catalog.catalog.as_ref().unwrap_or(&empty);
    let locale_index: FxMap<&str, usize> = known
        .locales()
        .into_iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let mut codes: FxMap<&str, CodeInfo> = known
        .kinds
        .iter()
        .enumerate()
        .map(|(index, (code, &kind))| {
            let info = CodeInfo {
                code,
                index,
                kind,
                in_locale: vec![false; locale_index.len()],
            };
            (code.as_str(), info)
        })
        .collect();
    for (code, locale) in known.entries.keys() {
        if let Some(info) = codes.get_mut(code.as_str()) {
            info.in_locale[locale_index[locale.as_str()]] = true;
        }
    }
    let codes = catalog.catalog.as_ref().map(|_| codes);
    let code_list: Vec<&Code> = known.kinds.keys().collect();
    // The current employee's valid rows by code number, turned into a map in one go (sorted
    // by code, which is the map's order) when the rows move on to another employee.
    let mut pending: Vec<(usize, Wanted)> = Vec::new();
    let mut pending_slot = 0;
    // One slot per employee; rows usually come grouped by employee, so the last one is kept.
    let mut slots: Vec<Slot> = Vec::new();
    let mut slot_of: FxMap<Cow<str>, usize> = FxMap::default();
    if let Some(agents) = &agents.agents {
        slots.reserve(agents.len());
        slot_of.reserve(agents.len());
        for (id, agent) in agents {
            slot_of.insert(Cow::Borrowed(id.as_str()), slots.len());
            slots.push(Slot {
                employee: Cow::Borrowed(id.as_str()),
                agent: Some(agent),
                locale: locale_index.get(agent.locale.as_str()).copied(),
                wanted: BTreeMap::new(),
            });
        }
    }
    let mut last_employee = String::new();
    let mut last_slot = None;

    while let Some((line, shape)) = table.next(problems) {
        if shape == Shape::Broken {
            continue;
        }
        let employee = table.get(S_EMPLOYEE);
        let code = table.get(S_CODE);
        let mut ok = true;

        if employee.is_empty() {
            ok = false;
            problems.push(
                table
                    .error(line, S_EMPLOYEE, "employee_id is empty")
                    .hint(format!(
                        "give the HRIS id of an employee in {}",
                        names.agents
                    )),
            );
        }
        if code.is_empty() {
            ok = false;
            problems.push(
                table
                    .error(line, S_CODE, "code is empty")
                    .hint(format!("give a code from {}", names.catalog)),
            );
        }
        let level_text = table.get(S_LEVEL);
        let level = match level_text.parse::<i64>() {
            Ok(n) => match Level::new(n) {
                Ok(level) => Some(level),
                Err(e) => {
                    ok = false;
                    problems.push(
                        table
                            .error(line, S_LEVEL, e.to_string())
                            .hint("use a whole number from 1 (lowest) to 10 (highest)"),
                    );
                    None
                }
            },
            Err(_) => {
                ok = false;
                let message = if level_text.is_empty() {
                    "level is empty".to_string()
                } else {
                    format!("level `{level_text}` is not a whole number")
                };
                problems.push(
                    table
                        .error(line, S_LEVEL, message)
                        .hint("use a whole number from 1 (lowest) to 10 (highest)"),
                );
                None
            }
        };
        let active_text = table.get(S_ACTIVE);
        let active = parse_active(active_text);
        if active.is_none() {
            ok = false;
            problems.push(
                table
                    .error(
                        line,
                        S_ACTIVE,
                        format!("active `{active_text}` is not true or false"),
                    )
                    .hint("write true/false, yes/no or 1/0, or leave it empty for true"),
            );
        }

        // The employee: known from agents.csv, or (when that file is unusable) taken as given.
        let mut slot = None;
        if !employee.is_empty() {
            if last_slot.is_some() && employee == last_employee {
                slot = last_slot;
            } else {
                slot = slot_of.get(employee).copied();
                if slot.is_none() && agents.agents.is_none() {
                    slot_of.insert(Cow::Owned(employee.to_string()), slots.len());
                    slot = Some(slots.len());
                    slots.push(Slot {
                        employee: Cow::Owned(employee.to_string()),
                        agent: None,
                        locale: None,
                        wanted: BTreeMap::new(),
                    });
                }
                if slot.is_some() {
                    last_employee.clear();
                    last_employee.push_str(employee);
                    last_slot = slot;
                }
            }
            if slot.is_none() {
                ok = false;
                if !agents.broken.contains(employee) {
                    problems.push(
                        table
                            .error(
                                line,
                                S_EMPLOYEE,
                                format!("employee `{employee}` is not in {}", names.agents),
                            )
                            .hint(format!(
                                "add `{employee}` to {} or remove its assignments",
                                names.agents
                            )),
                    );
                }
            }
        }

        // The code: from the catalog, or (when that file is unusable) taken as given.
        let mut known_code: Option<&CodeInfo> = None;
        let mut code_ok = !code.is_empty();
        if let (Some(codes), false) = (&codes, code.is_empty()) {
            match codes.get(code) {
                Some(info) => known_code = Some(info),
                None => {
                    code_ok = false;
                    ok = false;
                    if !catalog.broken_codes.contains(code) {
                        let hint = match closest(code, codes.keys().copied()) {
                            Some(near) => format!("did you mean `{near}`?"),
                            None => {
                                format!("add `{code}` to {} or correct the code", names.catalog)
                            }
                        };
                        problems.push(
                            table
                                .error(
                                    line,
                                    S_CODE,
                                    format!(
                                        "unknown code `{code}`: it is not in {}",
                                        names.catalog
                                    ),
                                )
                                .hint(hint),
                        );
                    }
                }
            }
        }

        // Edge case 3: the variant in the agent's own locale, or an error. Never another locale.
        // (An agent in a locale the catalog lacks altogether was reported in agents.csv.)
        let agent_locale = slot.and_then(|i| slots[i].agent.zip(slots[i].locale));
        if let (Some((agent, l)), Some(info)) = (agent_locale, known_code)
            && !info.in_locale[l]
        {
            ok = false;
            if !catalog.broken_codes.contains(code) {
                let locale = &agent.locale;
                let kind = info.kind;
                let has = known.locales_of(info.code);
                problems.push(
                    table
                        .error(
                            line,
                            S_CODE,
                            format!(
                                "code `{code}` has no variant in {locale}, the locale of employee `{employee}` (it has {})",
                                list(has.iter().map(|l| l.as_str()))
                            ),
                        )
                        .hint(format!(
                            "add a row `{code},{kind},{locale},<name>,<description>,<routing_profile_id>` to {}; \
                             skillsync never assigns another locale's variant",
                            names.catalog
                        )),
                );
            }
        }

        let (true, Some(slot), true, Some(level), Some(active)) =
            (ok, slot, code_ok, level, active)
        else {
            continue;
        };
        let wanted = Wanted {
            level,
            active,
            line,
        };
        if let Some(info) = known_code {
            if pending_slot != slot {
                flush(
                    &mut pending,
                    &mut slots[pending_slot],
                    &code_list,
                    &table,
                    problems,
                );
                pending_slot = slot;
            }
            pending.push((info.index, wanted));
            continue;
        }
        // Without a usable catalog, codes are taken as given, one row at a time.
        match slots[slot].wanted.entry(Code::from(code)) {
            Entry::Vacant(vacant) => {
                vacant.insert(wanted);
            }
            Entry::Occupied(earlier) => {
                problems.push(repeated(&table, employee, code, earlier.get(), &wanted));
            }
        }
    }
    if let Some(slot) = slots.get_mut(pending_slot) {
        flush(&mut pending, slot, &code_list, &table, problems);
    }
    table.finish("one row per employee and code", problems);

    slots
        .into_iter()
        .filter(|slot| !slot.wanted.is_empty())
        .map(|slot| (EmployeeId(slot.employee.into_owned()), slot.wanted))
        .collect()
}

/// Moves one employee's pending rows (valid, with catalog codes) into its map, reporting
/// repeats: the first row of an employee and code wins.
fn flush<R: Read>(
    pending: &mut Vec<(usize, Wanted)>,
    slot: &mut Slot,
    codes: &[&Code],
    table: &Table<R>,
    problems: &mut Vec<Problem>,
) {
    if pending.is_empty() {
        return;
    }
    pending.sort_by_key(|&(code, _)| code); // stable: rows of one code stay in line order
    pending.dedup_by(|later, earlier| {
        let repeat = later.0 == earlier.0;
        if repeat {
            let code = codes[later.0].as_str();
            problems.push(repeated(table, &slot.employee, code, &earlier.1, &later.1));
        }
        repeat
    });
    if slot.wanted.is_empty() {
        // Sorted by code already, so the map is built without searching.
        slot.wanted = pending
            .drain(..)
            .map(|(code, wanted)| (codes[code].clone(), wanted))
            .collect();
        return;
    }
    // The employee's rows came in more than one run: merge, earlier rows winning.
    for (code, wanted) in pending.drain(..) {
        match slot.wanted.get(codes[code]) {
            Some(earlier) => {
                let earlier = *earlier;
                problems.push(repeated(
                    table,
                    &slot.employee,
                    codes[code].as_str(),
                    &earlier,
                    &wanted,
                ));
            }
            None => {
                slot.wanted.insert(codes[code].clone(), wanted);
            }
        }
    }
}

/// The problem for a second row of the same employee and code: an error if it says something
/// else, a warning if it repeats the first.
fn repeated<R: Read>(
    table: &Table<R>,
    employee: &str,
    code: &str,
    earlier: &Wanted,
    later: &Wanted,
) -> Problem {
    let line = later.line;
    let (level, active) = (later.level, later.active);
    if (earlier.level, earlier.active) == (level, active) {
        return table
            .warning(
                line,
                S_CODE,
                format!(
                    "employee `{employee}` is assigned `{code}` twice with the same values, on lines {} and {line}",
                    earlier.line
                ),
            )
            .hint(format!("remove the repeated row on line {line}"));
    }
    let (k, was, now) = if earlier.level != level {
        (
            S_LEVEL,
            format!("level {}", earlier.level),
            format!("level {level}"),
        )
    } else {
        (
            S_ACTIVE,
            format!("active {}", earlier.active),
            format!("active {active}"),
        )
    };
    let k = if table.column(k).is_some() { k } else { S_CODE };
    table
        .error(
            line,
            k,
            format!(
                "employee `{employee}` is assigned `{code}` twice with different values: {was} on line {}, {now} on line {line}",
                earlier.line
            ),
        )
        .hint(format!(
            "keep one row per employee and code: remove line {line} or line {}",
            earlier.line
        ))
}

/// A catalog code as assignments look it up.
struct CodeInfo<'a> {
    code: &'a Code,
    /// Its position in the catalog's (sorted) codes.
    index: usize,
    kind: Kind,
    /// By locale number: whether the code has a variant there.
    in_locale: Vec<bool>,
}

/// One employee's assignments as they are read.
struct Slot<'a> {
    employee: Cow<'a, str>,
    agent: Option<&'a Agent>,
    /// The agent's locale's number, if the catalog has the locale at all.
    locale: Option<usize>,
    wanted: BTreeMap<Code, Wanted>,
}

/// The catalog code nearest to `code` within edit distance 2 (case-insensitive), if any.
/// Runs only for an unknown code, so a scan of the catalog is fine.
fn closest<'a>(code: &str, codes: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let sorted: BTreeSet<&str> = codes.collect();
    let mut best: Option<(usize, &str)> = None;
    for candidate in sorted {
        if candidate.chars().count().abs_diff(code.chars().count()) > 2 {
            continue;
        }
        let d = levenshtein(code, candidate);
        if d <= 2 && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Edit distance (insertions, deletions, substitutions), ignoring ASCII case.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().map(|c| c.to_ascii_lowercase()).enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Severity;

    const CATALOG: &[u8] = b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,Card payments,rp-1
PAY,skill,de-de,Zahlungen,Kartenzahlungen,rp-1
QA,proficiency,en-us,Quality,,rp-1
QA,proficiency,de-de,Qualitaet,,rp-1
";
    const AGENTS: &[u8] = b"employee_id,user_id,locale
E1,u-1,en-us
E2,u-2,de-de
";
    const ASSIGNMENTS: &[u8] = b"employee_id,code,level,active
E1,PAY,5,true
E1,QA,3,
E2,PAY,7,no
";

    fn src(name: &str, bytes: &'static [u8]) -> Source<&'static [u8]> {
        Source {
            name: name.to_string(),
            reader: bytes,
        }
    }

    fn load(
        catalog: &'static [u8],
        agents: &'static [u8],
        assignments: &'static [u8],
    ) -> Result<Loaded, Vec<Problem>> {
        read_desired(
            src("hris/catalog.csv", catalog),
            src("hris/agents.csv", agents),
            src("hris/assignments.csv", assignments),
        )
    }

    fn ok(catalog: &'static [u8], agents: &'static [u8], assignments: &'static [u8]) -> Loaded {
        match load(catalog, agents, assignments) {
            Ok(loaded) => loaded,
            Err(problems) => panic!("unexpected problems:\n{}", show(&problems)),
        }
    }

    fn errors(
        catalog: &'static [u8],
        agents: &'static [u8],
        assignments: &'static [u8],
    ) -> Vec<Problem> {
        match load(catalog, agents, assignments) {
            Ok(loaded) => panic!("expected errors, got {:?}", loaded.desired),
            Err(problems) => problems,
        }
    }

    fn show(problems: &[Problem]) -> String {
        problems.iter().map(|p| format!("{p}\n")).collect()
    }

    /// The one problem whose message contains `needle`.
    fn find<'a>(problems: &'a [Problem], needle: &str) -> &'a Problem {
        let found: Vec<&Problem> = problems
            .iter()
            .filter(|p| p.message.contains(needle))
            .collect();
        assert_eq!(found.len(), 1, "`{needle}` in:\n{}", show(problems));
        found[0]
    }

    /// file, line, column and field of a problem.
    fn at(p: &Problem) -> (&str, Option<u64>, Option<u64>, Option<&str>) {
        (p.file.as_str(), p.line, p.column, p.field.as_deref())
    }

    fn wanted(loaded: &Loaded, employee: &str, code: &str) -> Wanted {
        loaded.desired.assignments[&EmployeeId::from(employee)][&Code::from(code)]
    }

    #[test]
    fn a_valid_set_is_read_into_desired() {
        let loaded = ok(CATALOG, AGENTS, ASSIGNMENTS);
        assert!(loaded.warnings.is_empty());
        let d = &loaded.desired;
        assert_eq!(d.catalog.entries.len(), 4);
        assert_eq!(
            d.catalog.kind_of(&Code::from("QA")),
            Some(Kind::Proficiency)
        );
        let pay_de = d
            .catalog
            .entry(&Code::from("PAY"), &Locale::parse("de-de").unwrap())
            .unwrap();
        assert_eq!((pay_de.name.as_str(), pay_de.line), ("Zahlungen", 3));
        assert_eq!(d.agents.len(), 2);
        assert_eq!(
            d.agents[&EmployeeId::from("E2")].user_id,
            UserId::from("u-2")
        );
        assert_eq!(d.agents[&EmployeeId::from("E2")].line, 3);
        let e1_qa = wanted(&loaded, "E1", "QA");
        assert_eq!((e1_qa.level.get(), e1_qa.active, e1_qa.line), (3, true, 3));
        let e2_pay = wanted(&loaded, "E2", "PAY");
        assert_eq!(
            (e2_pay.level.get(), e2_pay.active, e2_pay.line),
            (7, false, 4)
        );
        assert_eq!(d.assignments.len(), 2);
    }

    // --- every file ------------------------------------------------------------------------

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
    fn header_without_rows_is_an_error_naming_the_file() {
        let problems = errors(CATALOG, AGENTS, b"employee_id,code,level,active\n\n");
        let p = find(&problems, "hris/assignments.csv has a header but no rows");
        assert_eq!(at(p), ("hris/assignments.csv", Some(1), None, None));
        assert!(p.is_error());
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

    // --- catalog.csv -----------------------------------------------------------------------

    #[test]
    fn catalog_empty_code_name_or_routing_profile_is_an_error() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
,skill,en-us,Payments,,rp-1
PAY,skill,en-us,,,rp-1
PAY,skill,de-de,Zahlungen,,
",
            b"employee_id,user_id,locale\nE1,u-1,en-us\n",
            b"employee_id,code,level\nE1,PAY,5\n",
        );
        assert_eq!(
            at(find(&problems, "code is empty")),
            ("hris/catalog.csv", Some(2), Some(1), Some("code"))
        );
        assert_eq!(
            at(find(&problems, "name is empty")),
            ("hris/catalog.csv", Some(3), Some(4), Some("name"))
        );
        let p = find(&problems, "routing_profile_id is empty");
        assert_eq!(
            at(p),
            (
                "hris/catalog.csv",
                Some(4),
                Some(6),
                Some("routing_profile_id")
            )
        );
        assert!(p.hint.is_some());
        // PAY's rows were wrong, so the assignment is not reported as an unknown code too.
        assert_eq!(problems.len(), 3, "{}", show(&problems));
    }

    #[test]
    fn catalog_kind_other_than_skill_or_proficiency_is_an_error() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,Skill,en-us,Payments,,rp-1
QA,queue,en-us,Quality,,rp-1
",
            b"employee_id,user_id,locale\nE1,u-1,en-us\n",
            b"employee_id,code,level\nE1,PAY,5\n",
        );
        let p = find(&problems, "kind `Skill` is not `skill` or `proficiency`");
        assert_eq!(at(p), ("hris/catalog.csv", Some(2), Some(2), Some("kind")));
        assert_eq!(p.hint.as_deref(), Some("write `skill`, in lower case"));
        assert_eq!(find(&problems, "kind `queue`").line, Some(3));
    }

    #[test]
    fn catalog_malformed_or_uppercase_locale_is_an_error() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-US,Payments,,rp-1
QA,skill,english,Quality,,rp-1
XS,skill,,Cross-sell,,rp-1
",
            b"employee_id,user_id,locale\nE1,u-1,en-us\n",
            b"employee_id,code,level\nE1,PAY,5\n",
        );
        let p = find(
            &problems,
            "locale `en-US` must be lowercase (write `en-us`)",
        );
        assert_eq!(
            at(p),
            ("hris/catalog.csv", Some(2), Some(3), Some("locale"))
        );
        assert!(p.hint.as_deref().unwrap().starts_with("write `en-us`"));
        assert_eq!(
            find(&problems, "`english` is not a locale tag").line,
            Some(3)
        );
        assert_eq!(find(&problems, "locale is empty").line, Some(4));
        // E1 (en-us) is not an "unknown locale": the en-US row was meant for it.
        assert_eq!(problems.len(), 3, "{}", show(&problems));
    }

    #[test]
    fn catalog_kind_mismatch_is_reported_at_the_later_line() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,,rp-1
QA,proficiency,en-us,Quality,,rp-1
PAY,proficiency,de-de,Zahlungen,,rp-1
",
            AGENTS,
            b"employee_id,code,level\nE1,PAY,5\n",
        );
        let p = find(&problems, "kind mismatch");
        assert_eq!(at(p), ("hris/catalog.csv", Some(4), Some(2), Some("kind")));
        assert!(
            p.message.contains("proficiency here but a skill on line 2"),
            "{p}"
        );
        assert!(p.hint.as_deref().unwrap().contains("line 4 and line 2"));
        assert_eq!(problems.len(), 1, "{}", show(&problems));
    }

    #[test]
    fn catalog_two_codes_naming_the_same_definition_is_an_error() {
        let catalog = "code,kind,locale,name,description,routing_profile_id\nBILLING,skill,en-us,Billing_Dispute_Resolution,,p1\nBILL_DISPUTE,skill,en-us,Billing_Dispute_Resolution,,p1\n";
        let problems = read_desired(
            Source {
                name: "catalog.csv".into(),
                reader: catalog.as_bytes(),
            },
            Source {
                name: "agents.csv".into(),
                reader: &b"employee_id,user_id,locale\nE1,u1,en-us\n"[..],
            },
            Source {
                name: "assignments.csv".into(),
                reader: &b"employee_id,code,level\nE1,BILLING,5\n"[..],
            },
        )
        .unwrap_err();
        let p = problems
            .iter()
            .find(|p| {
                p.message
                    .contains("already the definition of code `BILLING`")
            })
            .expect("reported");
        assert_eq!(
            (p.file.as_str(), p.line, p.field.as_deref()),
            ("catalog.csv", Some(3), Some("name"))
        );
    }

    #[test]
    fn catalog_duplicate_code_and_locale_names_both_lines() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,,rp-1
QA,proficiency,en-us,Quality,,rp-1
PAY,skill,en-us,Payments again,,rp-1
",
            b"employee_id,user_id,locale\nE1,u-1,en-us\n",
            b"employee_id,code,level\nE1,PAY,5\n",
        );
        let p = find(&problems, "listed twice");
        assert_eq!(
            p.message,
            "code `PAY` in locale en-us is listed twice, on lines 2 and 4"
        );
        assert_eq!(
            at(p),
            ("hris/catalog.csv", Some(4), Some(3), Some("locale"))
        );
    }

    // --- agents.csv ------------------------------------------------------------------------

    #[test]
    fn agents_empty_employee_or_user_id_is_an_error() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\n,u-1,en-us\nE2,,de-de\n",
            ASSIGNMENTS,
        );
        assert_eq!(
            at(find(&problems, "employee_id is empty")),
            ("hris/agents.csv", Some(2), Some(1), Some("employee_id"))
        );
        assert_eq!(
            at(find(&problems, "user_id is empty")),
            ("hris/agents.csv", Some(3), Some(2), Some("user_id"))
        );
        // E1 never made it into agents.csv, so its assignments are unknown; E2's row was
        // wrong, so its assignment is not reported again.
        let unknown: Vec<_> = problems
            .iter()
            .filter(|p| p.message == "employee `E1` is not in hris/agents.csv")
            .map(|p| p.line)
            .collect();
        assert_eq!(unknown, [Some(2), Some(3)]);
        assert_eq!(problems.len(), 4, "{}", show(&problems));
    }

    #[test]
    fn agents_malformed_locale_is_an_error() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\nE1,u-1,EN-US\nE2,u-2,de_de\n",
            ASSIGNMENTS,
        );
        let p = find(
            &problems,
            "locale `EN-US` must be lowercase (write `en-us`)",
        );
        assert_eq!(at(p), ("hris/agents.csv", Some(2), Some(3), Some("locale")));
        assert_eq!(find(&problems, "`de_de` is not a locale tag").line, Some(3));
        assert_eq!(problems.len(), 2, "{}", show(&problems));
    }

    #[test]
    fn agents_duplicate_employee_is_an_error() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\nE1,u-1,en-us\nE2,u-2,de-de\nE1,u-3,en-us\n",
            ASSIGNMENTS,
        );
        let p = find(&problems, "listed twice");
        assert_eq!(p.message, "employee `E1` is listed twice, on lines 2 and 4");
        assert_eq!(
            at(p),
            ("hris/agents.csv", Some(4), Some(1), Some("employee_id"))
        );
    }

    #[test]
    fn agents_shared_user_id_names_both_employees_and_lines() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\nE2,u-1,de-de\nE1,u-1,en-us\n",
            ASSIGNMENTS,
        );
        let p = find(&problems, "share user id");
        assert_eq!(
            p.message,
            "employees `E2` (line 2) and `E1` (line 3) share user id `u-1`"
        );
        assert_eq!(
            at(p),
            ("hris/agents.csv", Some(3), Some(2), Some("user_id"))
        );
    }

    #[test]
    fn agents_unknown_locale_lists_the_catalogs_locales() {
        let problems = errors(
            CATALOG,
            b"employee_id,user_id,locale\nE1,u-1,en-us\nE2,u-2,fr-fr\n",
            ASSIGNMENTS,
        );
        let p = find(&problems, "unknown locale");
        assert_eq!(at(p), ("hris/agents.csv", Some(3), Some(3), Some("locale")));
        assert!(p.message.contains("`E2` works in fr-fr"), "{p}");
        assert!(
            p.hint
                .as_deref()
                .unwrap()
                .starts_with("the catalog has de-de, en-us"),
            "{p}"
        );
        // E2's PAY assignment is not reported again as a missing fr-fr variant.
        assert_eq!(problems.len(), 1, "{}", show(&problems));
    }

    // --- assignments.csv -------------------------------------------------------------------

    #[test]
    fn assignments_level_not_an_integer_or_outside_1_to_10_is_an_error() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level,active\nE1,PAY,high,true\nE1,QA,11,\nE2,PAY,0,\nE2,QA,,\n",
        );
        let p = find(&problems, "level `high` is not a whole number");
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(2), Some(3), Some("level"))
        );
        assert!(
            p.hint
                .as_deref()
                .unwrap()
                .contains("1 (lowest) to 10 (highest)")
        );
        assert_eq!(find(&problems, "level 11 is outside 1–10").line, Some(3));
        assert_eq!(find(&problems, "level 0 is outside 1–10").line, Some(4));
        assert_eq!(find(&problems, "level is empty").line, Some(5));
    }

    #[test]
    fn assignments_unknown_code_suggests_the_closest() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level\nE1,PAYY,5\nE1,pay,5\nE2,BILLING,5\n",
        );
        let p = find(&problems, "unknown code `PAYY`");
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(2), Some(2), Some("code"))
        );
        assert_eq!(p.hint.as_deref(), Some("did you mean `PAY`?"));
        assert_eq!(
            find(&problems, "unknown code `pay`").hint.as_deref(),
            Some("did you mean `PAY`?")
        );
        let p = find(&problems, "unknown code `BILLING`");
        assert_eq!(
            p.hint.as_deref(),
            Some("add `BILLING` to hris/catalog.csv or correct the code")
        );
    }

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("PAY", "pay"), 0);
        assert_eq!(closest("QAX", ["PAY", "QA"].into_iter()), Some("QA"));
        assert_eq!(closest("ZZZZZ", ["PAY", "QA"].into_iter()), None);
    }

    #[test]
    fn assignments_unknown_employee_is_an_error() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level\nE1,PAY,5\nE9,PAY,5\n",
        );
        let p = find(&problems, "employee `E9` is not in hris/agents.csv");
        assert_eq!(
            at(p),
            (
                "hris/assignments.csv",
                Some(3),
                Some(1),
                Some("employee_id")
            )
        );
        assert!(
            p.hint
                .as_deref()
                .unwrap()
                .contains("add `E9` to hris/agents.csv")
        );
    }

    #[test]
    fn assignments_conflicting_repeat_is_an_error_and_identical_repeat_a_warning() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level,active\nE1,PAY,5,true\nE1,QA,3,yes\nE1,PAY,6,true\nE1,QA,3,no\nE2,PAY,7,\nE2,PAY,7,1\n",
        );
        let p = find(&problems, "`PAY` twice with different values");
        assert_eq!(
            p.message,
            "employee `E1` is assigned `PAY` twice with different values: level 5 on line 2, level 6 on line 4"
        );
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(4), Some(3), Some("level"))
        );
        let p = find(&problems, "`QA` twice with different values");
        assert!(
            p.message
                .contains("active true on line 3, active false on line 5"),
            "{p}"
        );
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(5), Some(4), Some("active"))
        );
        let p = find(&problems, "twice with the same values");
        assert_eq!(p.severity, Severity::Warning);
        assert_eq!(
            p.message,
            "employee `E2` is assigned `PAY` twice with the same values, on lines 6 and 7"
        );
        assert_eq!(p.line, Some(7));
        // Alone, an identical repeat is only a warning and the first row wins.
        let loaded = ok(
            CATALOG,
            AGENTS,
            b"employee_id,code,level\nE1,PAY,5\nE1,PAY,5\n",
        );
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(wanted(&loaded, "E1", "PAY").line, 2);
    }

    #[test]
    fn assignments_repeats_are_found_when_an_employees_rows_are_not_together() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level\nE1,PAY,5\nE2,PAY,7\nE1,QA,3\nE1,PAY,6\nE2,QA,2\nE1,QA,3\n",
        );
        let p = find(&problems, "`PAY` twice with different values");
        assert!(
            p.message.contains("level 5 on line 2, level 6 on line 5"),
            "{p}"
        );
        assert_eq!(p.line, Some(5));
        let p = find(&problems, "`QA` twice with the same values");
        assert_eq!((p.severity, p.line), (Severity::Warning, Some(7)));
        assert_eq!(problems.len(), 2, "{}", show(&problems));
        let loaded = ok(
            CATALOG,
            AGENTS,
            b"employee_id,code,level\nE1,QA,5\nE2,PAY,7\nE1,PAY,6\nE2,QA,2\n",
        );
        assert_eq!(wanted(&loaded, "E1", "PAY").line, 4);
        assert_eq!(wanted(&loaded, "E1", "QA").line, 2);
        assert_eq!(loaded.desired.assignments[&EmployeeId::from("E2")].len(), 2);
    }

    #[test]
    fn assignments_missing_locale_variant_is_an_error_never_a_fallback() {
        // Edge case 3: XS exists in en-us only; E2 works in de-de.
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,,rp-1
PAY,skill,de-de,Zahlungen,,rp-1
XS,skill,en-us,Cross-sell,,rp-1
XS,skill,en-gb,Cross-sell,,rp-1
",
            AGENTS,
            b"employee_id,code,level\nE1,XS,5\nE2,PAY,5\nE2,XS,4\n",
        );
        assert_eq!(problems.len(), 1, "{}", show(&problems));
        let p = &problems[0];
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(4), Some(2), Some("code"))
        );
        assert_eq!(
            p.message,
            "code `XS` has no variant in de-de, the locale of employee `E2` (it has en-gb, en-us)"
        );
        let hint = p.hint.as_deref().unwrap();
        assert!(hint.starts_with("add a row `XS,skill,de-de,<name>,<description>,<routing_profile_id>` to hris/catalog.csv"), "{hint}");
        assert!(hint.contains("never assigns another locale's variant"));
    }

    #[test]
    fn assignments_bad_active_value_is_an_error() {
        let problems = errors(
            CATALOG,
            AGENTS,
            b"employee_id,code,level,active\nE1,PAY,5,maybe\n",
        );
        let p = find(&problems, "active `maybe` is not true or false");
        assert_eq!(
            at(p),
            ("hris/assignments.csv", Some(2), Some(4), Some("active"))
        );
        assert!(p.hint.as_deref().unwrap().contains("yes/no"));
    }

    #[test]
    fn assignments_active_accepts_words_in_any_case_and_defaults_to_true() {
        for (text, value) in [
            ("", true),
            ("true", true),
            ("YES", true),
            ("1", true),
            ("False", false),
            ("no", false),
            ("0", false),
        ] {
            assert_eq!(parse_active(text), Some(value), "{text:?}");
        }
        assert_eq!(parse_active("y"), None);
        // Without the column, everything is active.
        let loaded = ok(
            CATALOG,
            AGENTS,
            b"employee_id,code,level\nE1,PAY,5\nE2,QA,2\n",
        );
        assert!(wanted(&loaded, "E1", "PAY").active && wanted(&loaded, "E2", "QA").active);
    }

    // --- all together ----------------------------------------------------------------------

    #[test]
    fn every_problem_in_three_bad_files_is_reported_at_once() {
        let problems = errors(
            b"code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,,rp-1
PAY,skill,de-de,Zahlungen,,rp-1
QA,proficiency,en-us,Quality,,rp-1
QA,skill,de-de,Qualitaet,,rp-1
XS,skill,en-US,Cross-sell,,rp-1
PAY,skill,en-us,Payments,,rp-1
ONLY,skill,en-us,Only here,,rp-1
",
            b"employee_id,user_id,locale
E1,u-1,en-us
E2,u-2,de-de
E3,u-1,en-us
E1,u-4,en-us
E5,u-5,fr-fr
",
            b"employee_id,code,level,active
E1,PAY,5,true
E1,PYA,5,
E9,PAY,5,
E2,PAY,12,
E2,ONLY,3,perhaps
E1,PAY,6,
",
        );
        let expected: &[(&str, u64, u64, &str)] = &[
            ("hris/catalog.csv", 5, 2, "kind mismatch"),
            ("hris/catalog.csv", 6, 3, "locale `en-US` must be lowercase"),
            ("hris/catalog.csv", 7, 3, "listed twice, on lines 2 and 7"),
            ("hris/agents.csv", 4, 2, "share user id `u-1`"),
            ("hris/agents.csv", 5, 1, "employee `E1` is listed twice"),
            ("hris/agents.csv", 6, 3, "unknown locale"),
            ("hris/assignments.csv", 3, 2, "unknown code `PYA`"),
            ("hris/assignments.csv", 4, 1, "employee `E9` is not in"),
            ("hris/assignments.csv", 5, 3, "level 12 is outside 1–10"),
            (
                "hris/assignments.csv",
                6,
                2,
                "code `ONLY` has no variant in de-de",
            ),
            ("hris/assignments.csv", 6, 4, "active `perhaps`"),
            ("hris/assignments.csv", 7, 3, "twice with different values"),
        ];
        for &(file, line, column, needle) in expected {
            let p = find(&problems, needle);
            assert_eq!(
                (p.file.as_str(), p.line, p.column),
                (file, Some(line), Some(column)),
                "{p}"
            );
            assert!(p.is_error() && p.hint.is_some(), "{p}");
        }
        assert_eq!(problems.len(), expected.len(), "{}", show(&problems));
        // Sorted by file (catalog, agents, assignments), then line, then column.
        let order: Vec<_> = problems
            .iter()
            .map(|p| (p.file.clone(), p.line, p.column))
            .collect();
        let want: Vec<_> = expected
            .iter()
            .map(|&(f, l, c, _)| (f.to_string(), Some(l), Some(c)))
            .collect();
        assert_eq!(order, want);
    }

    #[test]
    fn a_broken_catalog_still_lets_agents_and_assignments_be_checked() {
        let problems = errors(
            b"code,kind,name\nPAY,skill,Payments\n",
            b"employee_id,user_id,locale\nE1,u-1,en-us\nE1,u-2,de-de\n",
            b"employee_id,code,level\nE1,PAY,5\nE1,PAY,6\nE1,QA,99\n",
        );
        assert_eq!(
            find(&problems, "no `locale` column").file,
            "hris/catalog.csv"
        );
        find(&problems, "employee `E1` is listed twice");
        find(&problems, "twice with different values");
        find(&problems, "level 99");
        assert!(
            !problems.iter().any(|p| p.message.contains("unknown")),
            "{}",
            show(&problems)
        );
    }

    /// The desired state with every `line` set to 0, to compare contents across row orders.
    fn without_lines(mut d: Desired) -> Desired {
        let mut catalog = Catalog::default();
        for mut entry in std::mem::take(&mut d.catalog.entries).into_values() {
            entry.line = 0;
            catalog.insert(entry);
        }
        d.catalog = catalog;
        d.agents.values_mut().for_each(|a| a.line = 0);
        d.assignments
            .values_mut()
            .flat_map(|m| m.values_mut())
            .for_each(|w| w.line = 0);
        d
    }

    #[test]
    fn row_order_does_not_change_the_result() {
        let forward = ok(CATALOG, AGENTS, ASSIGNMENTS);
        let backward = ok(
            b"description,routing_profile_id,code,kind,locale,name
,rp-1,QA,proficiency,de-de,Qualitaet
,rp-1,QA,proficiency,en-us,Quality
Kartenzahlungen,rp-1,PAY,skill,de-de,Zahlungen
Card payments,rp-1,PAY,skill,en-us,Payments
",
            b"employee_id,user_id,locale\nE2,u-2,de-de\nE1,u-1,en-us\n",
            b"employee_id,code,level,active\nE2,PAY,7,no\nE1,QA,3,\nE1,PAY,5,true\n",
        );
        assert_ne!(forward.desired, backward.desired, "lines differ");
        assert_eq!(
            without_lines(forward.desired),
            without_lines(backward.desired)
        );
    }
}
